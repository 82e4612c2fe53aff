"""Malformed input found by a fuzzer: every case is a clear HamtuneError (file and field named) or a
correct result, never a traceback."""

from __future__ import annotations

import string
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from conftest import TINY_SPACE
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hamtune.cli import main
from hamtune.data.hmnist import read_table
from hamtune.data.labels import DX_CODES
from hamtune.data.release import read_metadata
from hamtune.errors import HamtuneError
from hamtune.sweep.space import TOP_LEVEL, SearchSpace, parse_space
from hamtune.train.config import TrainConfig, build_config, parse_assignments

# derandomized: CI runs the same examples every time; explore with `pytest --hypothesis-seed=N`
FUZZ = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**12), 10**12),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12),
    st.sampled_from(["ae", "vae", "mlp", "cnn", "max", "min", "tpe", "asha", "nsga2", "grid"]),
)
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)), max_leaves=8
)
config_keys = st.sampled_from(sorted(TrainConfig.__dataclass_fields__))


@st.composite
def mutated_spaces(draw) -> dict:
    """A valid tiny space with a few keys replaced or added at any depth (nested first, then the top)."""
    raw = yaml.safe_load(yaml.safe_dump(TINY_SPACE, sort_keys=False))
    for _ in range(draw(st.integers(0, 2))):
        where = draw(st.sampled_from(["param", "spec", "fixed", "point"]))
        value = draw(values)
        if where == "param":
            raw["params"][draw(st.one_of(config_keys, st.text(max_size=6)))] = value
        elif where == "spec":
            name = draw(st.sampled_from(sorted(raw["params"])))
            spec = raw["params"][name] if isinstance(raw["params"][name], dict) else {}
            spec[draw(st.sampled_from(["choice", "int", "float", "log", "step", "when", "x"]))] = value
            raw["params"][name] = spec
        elif where == "fixed":
            raw["fixed"][draw(config_keys)] = value
        else:
            raw["points_to_evaluate"][0][draw(st.sampled_from(sorted(raw["params"])))] = value
    if draw(st.booleans()):
        raw[draw(st.sampled_from(sorted(TOP_LEVEL) + ["bogus"]))] = draw(values)
    return raw


@FUZZ
@given(mutated_spaces())
def test_search_space_files(raw):
    path = Path("fuzz.yaml")
    try:
        space = parse_space(raw, path)
    except HamtuneError as exc:
        assert str(exc).startswith(f"{path}: ") and len(str(exc).splitlines()) == 1
        return
    assert isinstance(space, SearchSpace)
    for param in space.params:
        assert param.kind in ("choice", "int", "float")


KINDS_OF_VALUE = [True, 0, -1, 1.5, float("nan"), "x", "", [], [1], ["a"], [{}], {}, {"a": 1}, None]


def test_every_key_of_a_space_holding_every_kind_of_value():
    """Systematic companion to the fuzzer: each top-level, nested and parameter key set to each kind
    of YAML value parses or ends in a one-line error naming the file."""
    path = Path("every.yaml")
    cases = [((key,), value) for key in sorted(TOP_LEVEL) for value in KINDS_OF_VALUE]
    for key, spec in TINY_SPACE.items():
        if isinstance(spec, dict) and key != "params":
            cases += [((key, sub), value) for sub in [*spec, "bogus"] for value in KINDS_OF_VALUE]
    for name in ("latent_dim", "lr", "kind", "beta"):
        cases += [(("params", name, sub), value) for sub in ("int", "float", "choice", "log", "when", "bogus") for value in KINDS_OF_VALUE]
    for keys, value in cases:
        raw = yaml.safe_load(yaml.safe_dump({**TINY_SPACE, "points_to_evaluate": [{"kind": "ae"}]}, sort_keys=False))
        target = raw
        for key in keys[:-1]:
            target = target[key]
        target[keys[-1]] = value
        try:
            parse_space(raw, path)
        except HamtuneError as exc:
            assert str(exc).startswith(f"{path}: ") and len(str(exc).splitlines()) == 1, (keys, value, str(exc))


@FUZZ
@given(st.text(max_size=200))
def test_search_space_text(tmp_path, text):
    from hamtune.sweep.space import load_space

    path = tmp_path / "space.yaml"
    path.write_text(text)
    try:
        load_space(path)
    except HamtuneError as exc:
        assert str(path) in str(exc)


field_text = st.one_of(st.text(alphabet=string.printable, max_size=10), st.sampled_from(list(DX_CODES) + ["", "NaN", "MEL"]))


@FUZZ
@given(st.lists(st.tuples(field_text, field_text, field_text, field_text), min_size=1, max_size=6))
def test_metadata_rows(tmp_path, rows):
    path = tmp_path / "HAM10000_metadata.csv"
    frame = pd.DataFrame(rows, columns=["lesion_id", "image_id", "dx", "age"])
    frame.to_csv(path, index=False)
    try:
        table = read_metadata(path)
    except HamtuneError as exc:
        assert str(exc).startswith(str(path)) and ("line" in str(exc) or "column" in str(exc) or "readable" in str(exc))
        return
    assert set(table["dx"]) <= set(DX_CODES)
    assert table["image_id"].is_unique and (table["image_id"] != "").all()
    assert table["age"].isna().all() or ((table["age"].dropna() >= 0) & (table["age"].dropna() <= 130)).all()


cells = st.one_of(st.integers(-5, 300), st.floats(-1, 300), st.just(float("nan")), st.text(max_size=4), st.just(""))


@FUZZ
@given(st.lists(st.lists(cells, min_size=5, max_size=5), min_size=1, max_size=5))
def test_hmnist_rows(tmp_path, rows):
    path = tmp_path / "hmnist_2_2_L.csv"
    frame = pd.DataFrame(rows, columns=["pixel0000", "pixel0001", "pixel0002", "pixel0003", "label"])
    frame.to_csv(path, index=False)
    try:
        pixels, labels = read_table(path)
    except HamtuneError as exc:
        assert str(exc).startswith(str(path))
        return
    assert pixels.shape == (len(rows), 2, 2, 1) and pixels.dtype == np.uint8
    assert ((labels >= 0) & (labels <= 6)).all()
    assert np.array_equal(pixels.reshape(len(rows), -1), np.array([[float(v) for v in row[:4]] for row in rows]))


@FUZZ
@given(
    st.lists(
        st.one_of(
            st.text(max_size=20),
            st.builds(
                lambda k, v: f"{k}={v}",
                config_keys,
                st.one_of(st.text(max_size=8), st.integers(-10, 10**9).map(str), st.floats(allow_nan=True).map(str)),
            ),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_set_values(items):
    try:
        config = build_config(parse_assignments(items))
    except HamtuneError as exc:
        assert "\n" not in str(exc)
        return
    assert isinstance(config, TrainConfig)


@pytest.mark.parametrize("item", ["lr=", "=3", "epochs=1.5", "kind=", "batch_size=nan", "preset=gan", "latent_dim=1e9"])
def test_set_values_exit_2_from_the_command_line(item, capsys):
    assert main(["train", "--set", item]) == 2
    err = capsys.readouterr().err
    assert err.startswith("hamtune: error:") and "Traceback" not in err
