"""Hostile input, second round (issue 22): bundles and results received from others, outputs that overwrite.

Each test does for real what a careless or hostile user would (edit a bundle, plant a pickle, point --out
at the wrong place, fill the disk) and checks for a one-line error (exit 1; 2 for a bad flag value) or the correct result,
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
from conftest import assert_one_line_error, run_cli
from PIL import Image

from hamtune.cli import main
from hamtune.export import integrity
from hamtune.export.bundle import META, NAMES, load_bundle


def tree(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(Path(folder).rglob("*")) if p.is_file()}


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
def test_a_torch_export_program_that_could_run_code_is_refused_before_torch_reads_it(capsys, program_bundle, tmp_path, image, how):
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
        assert_one_line_error(code, err, "working directory", "nothing was written or replaced", usage=True)
    assert tree(tmp_path) == before


@pytest.mark.parametrize("where", ["bundle.json", "an input photo", "a text file"])
def test_score_out_inside_the_bundle_onto_an_input_or_onto_a_file_that_is_not_csv_is_refused(
    capsys, program_bundle, tmp_path, image, where
):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    (tmp_path / "notes.txt").write_text("precious")
    out = {"bundle.json": bundle / META, "an input photo": image, "a text file": tmp_path / "notes.txt"}[where]
    before = tree(tmp_path)
    code, _, err = run_cli(capsys, "score", bundle, image.parent, "--out", out, "--no-progress")
    assert_one_line_error(code, err, "--out", "nothing was written", usage=True)
    assert tree(tmp_path) == before
    if where == "a text file":  # not even --force replaces what hamtune did not write
        code, _, err = run_cli(capsys, "score", bundle, image.parent, "--out", out, "--no-progress", "--force")
        assert_one_line_error(code, err, "hamtune never replaces what it did not make", usage=True)
        assert tree(tmp_path) == before


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


# ---- crashes -------------------------------------------------------------------------------------


def test_a_full_disk_while_writing_the_torch_export_program_is_one_line_and_leaves_no_bundle(capsys, trained, tmp_path, monkeypatch):
    write_bytes = Path.write_bytes

    def fill(self, data):
        if self.suffix == ".pt2":
            raise OSError(errno.ENOSPC, "No space left on device", str(self))
        return write_bytes(self, data)

    monkeypatch.setattr(Path, "write_bytes", fill)
    code, _, err = run_cli(capsys, "export", trained, "--out", tmp_path / "b", "--format", "torch-export")
    assert_one_line_error(code, err, "no space left on device")
    assert list(tmp_path.iterdir()) == []  # neither a bundle without its program nor a temporary folder


def test_a_bundle_left_by_a_killed_export_is_cleaned_up_by_the_next_one(capsys, trained, tmp_path):
    import subprocess
    import sys

    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    leftover = tmp_path / f".b.tmp-{dead.stdout.strip()}-deadbeef"  # what SIGKILL mid-export leaves
    leftover.mkdir()
    (leftover / "model.pt").write_bytes(b"half")
    assert run_cli(capsys, "export", trained, "--out", tmp_path / "b")[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


@pytest.mark.parametrize("what", ["bundle.json", "checkpoint config.json", "checkpoint weights", "metadata CSV"])
def test_a_file_linked_to_dev_zero_is_refused_by_name_never_read_without_end(
    capsys, trained, program_bundle, release_dir, tmp_path, image, what
):
    import shutil

    if what == "bundle.json":
        bundle = copy_bundle(program_bundle, tmp_path / "b")
        (bundle / META).unlink()
        (bundle / META).symlink_to("/dev/zero")
        code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv")
        assert_one_line_error(code, err, "bundle.json: a symbolic link")
        return
    if what == "metadata CSV":
        source = shutil.copytree(release_dir, tmp_path / "release", symlinks=True)
        metadata = next(source.glob("*.csv"))
        metadata.unlink()
        metadata.symlink_to("/dev/zero")
        code, _, err = run_cli(capsys, "data", "prepare", source, "--size", "16", "--out", tmp_path / "cache")
        assert_one_line_error(code, err, "not a regular file")
        return
    results = shutil.copytree(trained, tmp_path / "x")
    checkpoint = next((results / "checkpoints").iterdir())
    target = checkpoint / ("config.json" if what == "checkpoint config.json" else "best.pt")
    target.unlink()
    target.symlink_to("/dev/zero")
    code, _, err = run_cli(capsys, "export", results, "--out", tmp_path / "b")
    assert_one_line_error(code, err, "not a regular file")
    assert "pickle" not in err and not (tmp_path / "b").exists()


def test_a_fifo_among_the_inputs_is_named_as_such(capsys, program_bundle, tmp_path, image):
    os.mkfifo(tmp_path / "pipe.jpg")
    code, _, err = run_cli(capsys, "score", program_bundle, image, tmp_path / "pipe.jpg", "--out", tmp_path / "s.csv")
    assert code == 0, err
    assert "pipe.jpg: not a regular file (a FIFO" in err


# ---- silent wrong results and tracebacks: every field of a bundle is checked --------------------------


def hand_ensemble(bundle: Path, to: Path) -> Path:
    """An ensemble bundle of two copies of `bundle`, as `hamtune ensemble` lays one out."""
    for i in (1, 2):
        copy_bundle(bundle, to / "members" / str(i))
    info = json.loads((bundle / META).read_text())
    info.update(kind="ensemble", members=[{"path": f"members/{i}", "trial_id": "t", "center": 0.0, "scale": 1.0} for i in (1, 2)])
    (to / META).write_text(json.dumps(info))
    reseal(to)
    return to


@pytest.fixture(scope="module")
def torch_bundle(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("torch") / "b"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    return out


def set_member(key, value):
    def change(info):
        info["members"][0][key] = value

    return change


@pytest.mark.parametrize(
    "change, needle",
    [
        (set_member("path", "../b1"), "path must be members/N inside the bundle"),
        (set_member("path", "/tmp"), "path must be members/N inside the bundle"),
        (set_member("path", "."), "path must be members/N inside the bundle"),
        (set_member("scale", 0), "scale a positive one"),
        (set_member("scale", "abc"), "scale a positive one"),
        (lambda info: info["members"][0].pop("center"), "center must be a finite number"),
        (lambda info: info.update(members="members/1"), "members must be a list"),
        (lambda info: info.update(threshold=float("-inf")), "threshold must be a finite number or null"),
        (lambda info: info.update(bundle_version="2"), "bundle_version '2' is not one this hamtune reads"),
    ],
    ids=[
        "parent path",
        "absolute path",
        "itself",
        "scale 0",
        "scale abc",
        "no center",
        "members a string",
        "threshold -inf",
        "version a string",
    ],
)
def test_an_ensemble_bundle_is_checked_field_by_field(capsys, torch_bundle, tmp_path, image, change, needle):
    ensemble = hand_ensemble(torch_bundle, tmp_path / "e")
    assert run_cli(capsys, "score", ensemble, image, "--out", tmp_path / "ok.csv")[0] == 0  # as made, it scores
    edit_json(ensemble / META, change)
    code, _, err = run_cli(capsys, "score", ensemble, image, "--out", tmp_path / "s.csv")
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "s.csv").exists()


def zero_weights(bundle: Path) -> None:
    weights = torch.load(bundle / "model.pt", weights_only=True)
    torch.save({k: torch.zeros_like(v) for k, v in weights.items()}, bundle / "model.pt")


@pytest.mark.parametrize(
    "edit, resealed, needle",
    [
        ("zeroed weights", False, "model.pt: its sha256 differs"),
        ("input_range", False, "config.json: its sha256 differs"),
        ("input_range", True, "input_range 'pm1' disagrees with bundle.json's '01'"),
        ("score latent", True, "needs latent_mean"),
        ("config null", True, "must hold a JSON object"),
        ("empty score.pt", True, "score.pt: refused to load"),
        ("garbage program", True, "model.pt2: not a readable torch.export program"),
        ("added file", False, "notes.txt: a bundle holds no such file"),
        ("program of other weights", False, "model.pt2: its sha256 differs"),
        ("latent state mis-shaped", True, "needs latent_mean"),
    ],
)
def test_an_edited_or_swapped_bundle_file_is_refused(capsys, program_bundle, tmp_path, image, edit, resealed, needle):
    bundle = copy_bundle(program_bundle, tmp_path / "b")
    config = bundle / "config.json"
    if edit == "zeroed weights":
        zero_weights(bundle)
    elif edit == "input_range":
        edit_json(bundle / META, lambda info: info["preprocess"].update(input_range="01"))
        edit_json(config, lambda c: c.update(input_range="pm1"))
    elif edit == "score latent":
        edit_json(bundle / META, lambda info: info.update(score="latent"))
        edit_json(config, lambda c: c.update(score="latent"))
    elif edit == "config null":
        config.write_text("null")
    elif edit == "empty score.pt":
        (bundle / "score.pt").write_bytes(b"")
    elif edit == "garbage program":
        (bundle / "model.pt2").write_bytes(os.urandom(4096))
    elif edit == "added file":
        (bundle / "notes.txt").write_text("hi")
    elif edit == "program of other weights":  # a program exported from a model with other weights, copied in
        from hamtune.export.programs import write_programs

        model = load_bundle(bundle).model("cpu")
        with torch.no_grad():
            for parameter in model.parameters():
                parameter.zero_()
        (tmp_path / "other").mkdir()
        write_programs(tmp_path / "other", ["torch-export"], load_bundle(bundle), model)
        (bundle / "model.pt2").write_bytes((tmp_path / "other" / "model.pt2").read_bytes())
    elif edit == "latent state mis-shaped":
        edit_json(bundle / META, lambda info: info.update(score="latent"))
        edit_json(config, lambda c: c.update(score="latent"))
        torch.save({"latent_mean": torch.zeros(3), "latent_precision": torch.eye(3), "center": {}, "scale": {}}, bundle / "score.pt")
    if resealed:
        reseal(bundle)
    fmt = "torch-export" if edit in ("garbage program", "program of other weights") else "torch"
    code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--format", fmt)
    assert_one_line_error(code, err, needle)
    assert len(err.strip().splitlines()) == 1, err  # nothing logged by torch before hamtune's line


def test_an_onnx_program_without_the_models_outputs_is_refused(capsys, trained, tmp_path, image):
    pytest.importorskip("onnxruntime")
    bundle = tmp_path / "b"
    assert run_cli(capsys, "export", trained, "--out", bundle, "--format", "onnx")[0] == 0
    torch.onnx.export(
        torch.nn.Flatten(),
        (torch.rand(2, 3, 28, 28),),
        bundle / "model.onnx",
        input_names=["x"],
        output_names=["y"],
        dynamo=True,
        external_data=False,
        verbose=False,
    )
    reseal(bundle)
    code, _, err = run_cli(capsys, "score", bundle, image, "--out", tmp_path / "s.csv", "--format", "onnx")
    assert_one_line_error(code, err, "model.onnx: refused", "gives ['y']")


def test_exporting_an_ensemble_copies_only_its_own_files_never_a_link(torch_bundle, tmp_path):
    import pandas as pd

    from hamtune.errors import HamtuneError
    from hamtune.export.bundle import write_bundle

    source = hand_ensemble(torch_bundle, tmp_path / "e")
    row = pd.Series({"checkpoint": str(source), "trial_id": "ensemble-top2"})
    write_bundle(row, tmp_path / "program", "val_auroc", 1, formats=("torch-export",))  # one graph of the whole ensemble
    assert (tmp_path / "program" / "model.pt2").exists() and not (tmp_path / "program" / "members" / "1" / "model.pt2").exists()
    (source / "members" / "1" / "MODEL_CARD.md").unlink()
    (source / "members" / "1" / "MODEL_CARD.md").symlink_to("/etc/passwd")
    with pytest.raises(HamtuneError, match="MODEL_CARD.md: a symbolic link"):
        write_bundle(row, tmp_path / "out", "val_auroc", 1)
    (source / "members" / "1" / "MODEL_CARD.md").unlink()
    (source / "members" / "3").symlink_to("/etc", target_is_directory=True)
    with pytest.raises(HamtuneError, match="a symbolic link|no such file"):
        write_bundle(row, tmp_path / "out", "val_auroc", 1)
    assert not (tmp_path / "out").exists()


def test_the_python_api_names_a_bad_argument_in_one_line(trained, torch_bundle, tmp_path, image):
    import hamtune
    from hamtune.errors import HamtuneError

    calls = {
        "load_results(None)": lambda: hamtune.load_results(None),
        "write_report(None)": lambda: hamtune.write_report(None),
        "export_model(out=None)": lambda: hamtune.export_model(trained, None),
        "score(None)": lambda: hamtune.score(None, image),
        "score(device=tpu)": lambda: hamtune.score(torch_bundle, image, device="tpu"),
        "load_space(None)": lambda: hamtune.load_space(None),
        "train_model(results=None)": lambda: hamtune.train_model(results=None),
        "run_sweep(3)": lambda: hamtune.run_sweep(3),
        "run_sweep({})": lambda: hamtune.run_sweep({}),
        "export_model(rank='1')": lambda: hamtune.export_model(trained, tmp_path / "r", rank="1"),
        "export_model(formats=str)": lambda: hamtune.export_model(trained, tmp_path / "f", formats="torch-export"),
    }
    for name, call in calls.items():
        with pytest.raises(HamtuneError) as caught:
            call()
        assert "\n" not in str(caught.value), name
    assert not (tmp_path / "r").exists() and not (tmp_path / "f").exists()
