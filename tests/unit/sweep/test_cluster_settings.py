"""The cluster settings a sweep reads before Ray starts: a runtime_env from the space or --runtime-env, the torch
release compared across nodes, and the refusal to end processes of a folder that is not a Ray temp dir."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import TINY_SPACE

from hamtune.errors import HamtuneError, UsageError
from hamtune.sweep.cluster import read_runtime_env, release
from hamtune.sweep.space import parse_space
from hamtune.sweep.tune.cluster import stop_cluster


def test_a_space_runtime_env_has_its_local_paths_read_from_the_space_folder(tmp_path):
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "hamtune-0.1.0-py3-none-any.whl").write_bytes(b"")
    raw = {
        **TINY_SPACE,
        "runtime_env": {
            "py_modules": ["dist/hamtune-0.1.0-py3-none-any.whl", "s3://bucket/x.zip"],
            "pip": ["torch==2.13.0"],
            "env_vars": {"OMP_NUM_THREADS": "1"},
        },
    }
    space = parse_space(raw, tmp_path / "space.yaml")
    assert space.runtime_env["py_modules"] == [str(tmp_path / "dist" / "hamtune-0.1.0-py3-none-any.whl"), "s3://bucket/x.zip"]
    assert space.runtime_env["pip"] == ["torch==2.13.0"] and space.runtime_env["env_vars"] == {"OMP_NUM_THREADS": "1"}
    assert parse_space(TINY_SPACE, tmp_path / "space.yaml").runtime_env is None


@pytest.mark.parametrize(
    ("runtime_env", "needle"),
    [
        ({"pipp": ["x"]}, "unknown key(s) pipp"),
        ({"working_dir": "missing"}, "working_dir: "),
        ({"env_vars": {"A": 1}}, "env_vars: expected a mapping of names to strings"),
        ("pip", "expected a mapping"),
    ],
)
def test_a_wrong_runtime_env_in_a_space_is_one_line_naming_the_file_and_key(tmp_path, runtime_env, needle):
    with pytest.raises(HamtuneError) as caught:
        parse_space({**TINY_SPACE, "runtime_env": runtime_env}, tmp_path / "space.yaml")
    assert str(caught.value).startswith(f"{tmp_path / 'space.yaml'}: runtime_env: ") and needle in str(caught.value)


def test_runtime_env_flag_takes_inline_json_or_a_yaml_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "hamtune").mkdir()
    assert read_runtime_env(json.dumps({"py_modules": ["hamtune"]})) == {"py_modules": [str(tmp_path / "hamtune")]}
    (tmp_path / "env.yaml").write_text(yaml.safe_dump({"working_dir": "hamtune"}))
    assert read_runtime_env("env.yaml") == {"working_dir": str(tmp_path / "hamtune")}
    with pytest.raises(UsageError, match="--runtime-env: not valid JSON"):
        read_runtime_env('{"pip": [}')
    with pytest.raises(UsageError, match="neither inline JSON nor a file"):
        read_runtime_env("nowhere.yaml")


def test_torch_builds_of_one_release_match_across_nodes():
    assert release("2.13.0+cu128") == release("2.13.0+cpu") == release("2.13.0") != release("2.12.1+cpu")


def test_cluster_stop_refuses_a_folder_that_is_not_a_ray_temp_dir(tmp_path):
    with pytest.raises(HamtuneError, match="not a Ray temp dir"):
        stop_cluster(tmp_path)
