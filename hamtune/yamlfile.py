"""YAML read safely and strictly: a key given twice in one mapping is an error, never the last one silently."""

from __future__ import annotations

import yaml


class DuplicateKey(yaml.YAMLError):
    """A mapping names one key twice; the message says which and on which lines."""


class StrictLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses duplicate keys."""


def _mapping(loader: StrictLoader, node: yaml.MappingNode, deep: bool = False) -> dict:
    loader.flatten_mapping(node)
    seen: dict = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: the base constructor reports it
            break
        if first is not None:
            raise DuplicateKey(f"key {key!r} is given twice (lines {first} and {key_node.start_mark.line + 1}); keep one")
        seen[key] = key_node.start_mark.line + 1
    return loader.construct_mapping(node, deep=deep)


StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _mapping)


def load_yaml(text: str):
    """Parse one YAML document like yaml.safe_load, refusing duplicate keys."""
    return yaml.load(text, Loader=StrictLoader)
