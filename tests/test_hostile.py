"""Hostile and careless input (issue 16): no data loss, no code execution, no hang, no silent wrong answer.

Each test runs the command a careless or hostile user would, for real, and checks for a one-line error
(exit code 2) or the correct behaviour, with nothing lost.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from hamtune.cli import main


def run_cli(capsys, *argv: str) -> tuple[int, str, str]:
    """Run `hamtune ARGV` in this process; returns the exit code, stdout and stderr."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == 2, err
    assert lines and lines[-1].startswith("hamtune: error: "), err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory) -> Path:
    """A results folder written by `hamtune train` (one MLP AE, one epoch, 28 px)."""
    root = tmp_path_factory.mktemp("trained")
    code = main(["train", "--data", str(prepared.path), "--set", "epochs=1", "--set", "image_size=28",
                 "--set", "mlp_width=32", "--name", "x", "--results", str(root)])
    assert code == 0
    return root / "x"


def tree(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


# ---- 1. data loss: export --force ------------------------------------------------------------------


@pytest.mark.parametrize("where", ["source", "parent", "stranger", "file", "link"])
def test_export_force_never_replaces_the_source_an_ancestor_or_a_folder_that_is_not_a_bundle(capsys, trained, tmp_path, where):
    root = trained.parent
    stranger = tmp_path / "photos"
    stranger.mkdir()
    (stranger / "holiday.jpg").write_bytes(b"precious")
    (tmp_path / "notes.txt").write_text("precious")
    (tmp_path / "link").symlink_to(trained, target_is_directory=True)
    out = {"source": trained, "parent": root, "stranger": stranger, "file": tmp_path / "notes.txt", "link": tmp_path / "link"}[where]
    before_results, before_stranger = tree(root), tree(stranger)
    code, _, err = run_cli(capsys, "export", trained, "--out", out, "--force")
    assert_one_line_error(code, err, "--out")
    assert tree(root) == before_results and tree(stranger) == before_stranger
    assert (stranger / "holiday.jpg").read_bytes() == b"precious" and (tmp_path / "notes.txt").read_text() == "precious"


def test_export_force_refuses_the_source_through_a_relative_or_linked_path(capsys, trained, tmp_path, monkeypatch):
    (tmp_path / "alias").symlink_to(trained.parent, target_is_directory=True)
    before = tree(trained.parent)
    code, _, err = run_cli(capsys, "export", trained, "--out", tmp_path / "alias" / "x" / ".." / "x", "--force")
    assert_one_line_error(code, err, "exported from")
    monkeypatch.chdir(trained)
    code, _, err = run_cli(capsys, "export", trained, "--out", ".", "--force")
    assert_one_line_error(code, err, "exported from")
    assert tree(trained.parent) == before


def test_export_force_replaces_an_earlier_bundle(capsys, trained, tmp_path):
    out = tmp_path / "model"
    assert run_cli(capsys, "export", trained, "--out", out)[0] == 0
    code, _, err = run_cli(capsys, "export", trained, "--out", out)
    assert_one_line_error(code, err, "--force")
    assert run_cli(capsys, "export", trained, "--out", out, "--force")[0] == 0
    assert json.loads((out / "bundle.json").read_text())["bundle_version"] == 1
