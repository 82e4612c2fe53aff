"""The package's layout shows the data flow: no import circles, and nothing imports a higher floor but the
`python -m hamtune.report` shim. Imports are read with ast (function-level ones included, TYPE_CHECKING ones not)."""

from __future__ import annotations

import ast

from conftest import ROOT

PACKAGE = ROOT / "hamtune"
FLOORS = (  # lowest first; a module may import its own floor and the ones below
    (
        "hamtune",
        "hamtune.config_fields",
        "hamtune.errors",
        "hamtune.files",
        "hamtune.paths",
        "hamtune.workers",
        "hamtune.yamlfile",
        "hamtune.results.layout",
    ),  # names only: the gate and the lock know a results folder by them
    ("hamtune.models",),
    ("hamtune.data",),
    ("hamtune.results",),
    ("hamtune.train",),
    ("hamtune.baselines",),
    ("hamtune.sweep",),
    ("hamtune.report", "hamtune.export"),
    ("hamtune.cli", "hamtune.__main__", "hamtune.api"),
)
SHIM = ("hamtune.report.__main__", "hamtune.cli")
FENCE = "hamtune.sweep.tune"  # the one package that imports Ray (its __init__ says why)


def module_name(path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def runtime_imports(tree: ast.AST) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            node.body = []  # annotations only: never imported at run time
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names += [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
    return names


def import_graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    graph = {}
    for name, path in modules.items():
        imported = runtime_imports(ast.parse(path.read_text(), str(path)))
        graph[name] = {other for other in imported if other in modules and other not in (name, "hamtune")}
    return graph


def floor(module: str) -> int:
    matches = [
        (len(prefix), i) for i, names in enumerate(FLOORS) for prefix in names if module == prefix or module.startswith(prefix + ".")
    ]
    return max(matches)[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on_stack, found = {}, {}, [], set(), []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for other in graph[node]:
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_imports_another_in_a_circle():
    assert cycles(import_graph()) == []


def test_only_the_python_m_shim_imports_a_higher_floor():
    graph = import_graph()
    upward = sorted((a, b) for a, targets in graph.items() for b in targets if floor(b) > floor(a))
    assert upward == [SHIM]


def test_every_module_has_a_floor():
    assert all(floor(name) >= 0 for name in import_graph())


def inside(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def ray_importers() -> list[str]:
    """Modules with any Ray import: at the top, in a function, or under TYPE_CHECKING (what grep sees too)."""
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom) and not node.level
                else []
            )
            if any(inside(name, "ray") for name in names):
                found.append(module_name(path))
                break
    return sorted(found)


def test_only_the_fence_imports_ray():
    importers = ray_importers()
    assert [m for m in importers if not inside(m, FENCE)] == []
    assert inside("hamtune.sweep.tune.runner", FENCE) and "hamtune.sweep.tune.runner" in importers  # the check sees Ray imports


def test_the_rest_of_sweep_never_imports_the_fence():
    graph = import_graph()
    crossing = sorted(
        (a, b) for a, targets in graph.items() for b in targets if inside(a, "hamtune.sweep") and not inside(a, FENCE) and inside(b, FENCE)
    )
    assert crossing == []
