"""Hostile input, second round (issue 22): bundles and results received from others, outputs that overwrite.

Each test does for real what a careless or hostile user would (edit a bundle, plant a pickle, point --out
at the wrong place, fill the disk) and checks for a one-line error (exit code 2) or the correct result,
with nothing lost and nothing run.
"""

from __future__ import annotations

import contextlib
import errno
import io
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from hamtune.cli import main
from hamtune.export import integrity
from hamtune.export.bundle import META, NAMES, load_bundle


def run_cli(capsys, *argv) -> tuple[int, str, str]:
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


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory) -> Path:
    """A results folder written by `hamtune train` (one MLP AE, one epoch, 28 px)."""
    root = tmp_path_factory.mktemp("trained2")
    code = main(["train", "--data", str(prepared.path), "--set", "epochs=1", "--set", "image_size=28",
                 "--set", "mlp_width=32", "--name", "x", "--results", str(root)])
    assert code == 0
    return root / "x"


@pytest.fixture(scope="module")
def program_bundle(trained, tmp_path_factory) -> Path:
    """A bundle exported with --format torch-export (kept pristine: tests copy it)."""
    out = tmp_path_factory.mktemp("programs") / "b"
    assert main(["export", str(trained), "--out", str(out), "--format", "torch-export"]) == 0
    return out


@pytest.fixture
def image(tmp_path) -> Path:
    path = tmp_path / "imgs" / "ISIC_0024306.jpg"
    path.parent.mkdir()
    Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8)).save(path)
    return path


def copy_bundle(bundle: Path, to: Path) -> Path:
    to.mkdir(parents=True)
    for relative, data in tree(bundle).items():
        (to / relative).parent.mkdir(parents=True, exist_ok=True)
        (to / relative).write_bytes(data)
    return to


def reseal(bundle: Path) -> None:
    """Recompute bundle.json's digests, as someone who edits a bundle on purpose would."""
    info = json.loads((bundle / META).read_text())
    info[integrity.DIGESTS] = integrity.digests(bundle, NAMES, META)
    (bundle / META).write_text(json.dumps(info))


def edit_json(path: Path, change) -> None:
    value = json.loads(path.read_text())
    change(value)
    path.write_text(json.dumps(value))


class Payload:
    """Unpickling it runs `code`: what a planted pickle does."""

    def __init__(self, code: str):
        self.code = code

    def __reduce__(self):
        return exec, (self.code,)


def rewrite_program(path: Path, how: str, marker: Path) -> None:
    """Edit model.pt2 in place as an attacker would: a pickled weight, a graph calling torch.os.system, a
    compiled library, or sample inputs that only load by unpickling."""
    with zipfile.ZipFile(path) as archive:
        entries = {name: archive.read(name) for name in archive.namelist()}
    root = next(iter(entries)).split("/", 1)[0]
    pickle = io.BytesIO()
    torch.save(Payload(f"open({str(marker)!r}, 'w').write('ran')"), pickle)
    if how == "pickled weight":
        name = f"{root}/data/weights/model_weights_config.json"
        config = json.loads(entries[name])
        meta = next(iter(config["config"].values()))
        meta["use_pickle"] = True
        entries[f"{root}/data/weights/{meta['path_name']}"] = pickle.getvalue()
        entries[name] = json.dumps(config).encode()
    elif how == "graph calls os.system":
        name = f"{root}/models/model.json"
        entries[name] = entries[name].replace(b'"torch.ops.aten.linear.default"', b'"torch.os.system"', 1)
    elif how == "compiled library":
        entries[f"{root}/data/aotinductor/model/model.so"] = b"\x7fELF"
    elif how == "pickled sample inputs":
        entries[f"{root}/data/sample_inputs/model.pt"] = pickle.getvalue()
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in entries.items():
            archive.writestr(name, data)


# ---- code execution ------------------------------------------------------------------------------


@pytest.mark.parametrize("how", ["pickled weight", "graph calls os.system", "compiled library", "pickled sample inputs"])
def test_a_torch_export_program_that_could_run_code_is_refused_before_torch_reads_it(
        capsys, program_bundle, tmp_path, image, how):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    marker = tmp_path / "RAN"
    rewrite_program(bundle / "model.pt2", how, marker)
    reseal(bundle)  # the digests are right: the program itself is what must be refused
    code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--format", "torch-export")
    assert_one_line_error(code, err, "model.pt2: refused")
    assert not marker.exists() and not (tmp_path / "s.csv").exists()
    if how == "pickled weight":  # the payload is real: torch.export.load alone runs it
        with contextlib.suppress(Exception):  # it then fails on the payload's return value, too late
            torch.export.load(bundle / "model.pt2")
        assert marker.read_text() == "ran"


def test_a_program_edited_after_export_fails_its_digest_before_anything_is_loaded(capsys, program_bundle, tmp_path, image):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    marker = tmp_path / "RAN"
    rewrite_program(bundle / "model.pt2", "pickled weight", marker)
    code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--format", "torch-export")
    assert_one_line_error(code, err, "model.pt2: its sha256 differs")
    assert not marker.exists()


def test_a_bundle_from_before_digests_scores_with_torch_but_its_program_is_refused(capsys, program_bundle, tmp_path, image):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    edit_json(bundle / META, lambda info: (info.pop(integrity.DIGESTS), info.update(bundle_version=2)))
    code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--format", "torch-export")
    assert_one_line_error(code, err, "without digests", "export the model again")
    code, out, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--no-progress")
    assert code == 0, err
    assert "scored 1 image(s)" in out


# ---- data loss -----------------------------------------------------------------------------------


def test_export_force_keeps_the_old_bundle_when_the_final_rename_fails(capsys, trained, tmp_path, monkeypatch):
    from hamtune import files

    out = tmp_path / "b"
    assert run_cli(capsys, "export", trained, "--out", out)[0] == 0
    before = tree(out)
    rename = os.rename

    def failing(src, dst):
        if Path(dst) == out and ".tmp-" in Path(src).name:  # the new bundle's rename into place
            raise OSError(errno.EIO, "Input/output error", str(dst))
        rename(src, dst)

    monkeypatch.setattr(files.os, "rename", failing)
    code, _, err = run_cli(capsys, "export", trained, "--out", out, "--force")
    assert_one_line_error(code, err, "the earlier one was kept")
    assert tree(out) == before and sorted(p.name for p in tmp_path.iterdir()) == ["b"]
    monkeypatch.setattr(files.os, "rename", rename)
    assert run_cli(capsys, "export", trained, "--out", out, "--force")[0] == 0  # and a working swap replaces it
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"] and load_bundle(out).info["rank"] == 1


@pytest.mark.parametrize("where", ["inside the bundle", "empty folder"])
def test_export_out_the_working_directory_or_a_folder_above_it_is_refused(capsys, trained, tmp_path, monkeypatch, where):
    out = tmp_path / "models" / "b1"
    if where == "inside the bundle":
        assert run_cli(capsys, "export", trained, "--out", out)[0] == 0
    else:
        out.mkdir(parents=True)
    before = tree(tmp_path)
    monkeypatch.chdir(out)
    for target in (".", "..", str(out)):
        code, _, err = run_cli(capsys, "export", trained, "--out", target, "--force")
        assert_one_line_error(code, err, "working directory", "nothing was replaced")
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["bundle.json", "an input photo", "a text file"])
def test_score_out_inside_the_bundle_onto_an_input_or_onto_a_file_that_is_not_csv_is_refused(
        capsys, program_bundle, tmp_path, image, where):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    (tmp_path / "notes.txt").write_text("precious")
    out = {"bundle.json": bundle / META, "an input photo": image, "a text file": tmp_path / "notes.txt"}[where]
    before = tree(tmp_path)
    code, _, err = run_cli(capsys, "score", bundle, image.parent, "--out", out, "--no-progress")
    assert_one_line_error(code, err, "--out", "nothing was written")
    assert tree(tmp_path) == before
    if where == "a text file":  # --force says the user means it
        assert run_cli(capsys, "score", bundle, image.parent, "--out", out, "--no-progress", "--force")[0] == 0
        assert out.read_text().startswith("image,score,flagged")


def test_two_exports_to_one_new_out_never_silently_replace_each_other(capsys, trained, tmp_path, monkeypatch):
    from hamtune.export import bundle as bundle_module

    out, seal = tmp_path / "b", bundle_module.seal
    calls = []

    def seal_while_another_export_finishes(folder, info):
        seal(folder, info)
        if not calls:  # the other export, started at the same moment, finishes first
            calls.append(folder)
            assert run_cli(capsys, "export", trained, "--out", out)[0] == 0
            calls.append(tree(out))

    monkeypatch.setattr(bundle_module, "seal", seal_while_another_export_finishes)
    code, _, err = run_cli(capsys, "export", trained, "--out", out)
    assert_one_line_error(code, err, "another process wrote it", "nothing was replaced")
    assert tree(out) == calls[1] and sorted(p.name for p in tmp_path.iterdir()) == ["b"]
