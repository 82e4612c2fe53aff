"""Hostile and careless input (issue 16): no data loss, no code execution, no hang, no silent wrong answer.

Each test runs the command a careless or hostile user would, for real, and checks for a one-line error
(exit 1; 2 for a bad flag value) or the correct behaviour, with nothing lost.
"""

from __future__ import annotations

import errno
import json
import os
import pickle
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SPACE, assert_one_line_error, run_cli

from hamtune.export.bundle import BUNDLE_VERSION


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
    assert_one_line_error(code, err, "--out", usage=True)
    assert tree(root) == before_results and tree(stranger) == before_stranger
    assert (stranger / "holiday.jpg").read_bytes() == b"precious" and (tmp_path / "notes.txt").read_text() == "precious"


def test_export_force_refuses_the_source_through_a_relative_or_linked_path(capsys, trained, tmp_path, monkeypatch):
    (tmp_path / "alias").symlink_to(trained.parent, target_is_directory=True)
    before = tree(trained.parent)
    code, _, err = run_cli(capsys, "export", trained, "--out", tmp_path / "alias" / "x" / ".." / "x", "--force")
    assert_one_line_error(code, err, "which this command reads", usage=True)
    monkeypatch.chdir(trained)
    code, _, err = run_cli(capsys, "export", trained, "--out", ".", "--force")
    assert_one_line_error(code, err, "which this command reads", usage=True)
    assert tree(trained.parent) == before


def test_export_force_replaces_an_earlier_bundle(capsys, trained, tmp_path):
    out = tmp_path / "model"
    assert run_cli(capsys, "export", trained, "--out", out)[0] == 0
    code, _, err = run_cli(capsys, "export", trained, "--out", out)
    assert_one_line_error(code, err, "--force", usage=True)
    assert run_cli(capsys, "export", trained, "--out", out, "--force")[0] == 0
    assert json.loads((out / "bundle.json").read_text())["bundle_version"] == BUNDLE_VERSION


# ---- 2. code execution: --resume of a folder someone else wrote ------------------------------------


def sweep_cli(space: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(results), "--num-cpus", "2", *extra]


def small_space(path: Path, prepared, **changes) -> Path:
    raw = {
        **TINY_SPACE,
        "data": str(prepared.path),
        "num_samples": 2,
        "max_epochs": 1,
        "points_to_evaluate": [],
        "params": {"kind": {"choice": ["ae"]}, "arch": {"choice": ["mlp"]}, "lr": {"float": [1e-3, 5e-3]}},
        **changes,
    }
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


class Payload:
    """A pickle that, when loaded, creates a marker file (a stand-in for os.system)."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "payload ran"))


@pytest.fixture(scope="module")
def finished_sweep(prepared, tmp_path_factory) -> tuple[Path, Path]:
    """A 2-trial sweep run to the end by the CLI; returns (space file, results root)."""
    root = tmp_path_factory.mktemp("sweeps")
    space = small_space(root / "z.yaml", prepared, name="z")
    done = subprocess.run(sweep_cli(space, root), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    return space, root


def copy_of(finished_sweep, tmp_path: Path, name: str) -> Path:
    """The finished sweep copied under another name, with this user's records for its Tune state."""
    space, root = finished_sweep
    shutil.copytree(root / "z", tmp_path / name)
    return tmp_path / name


@pytest.mark.slow
def test_resume_refuses_a_tuner_pickle_it_did_not_write_and_never_runs_it(finished_sweep, tmp_path):
    """The rest of the sweep's own state is recorded: it resumes, with one warning, for the planted file alone."""
    space, root = finished_sweep
    marker = tmp_path / "pwned"
    tuner = root / "z" / "tune" / "tuner.pkl"
    planted = pickle.dumps(Payload(marker))
    tuner.write_bytes(planted)
    # a recorded copy exists: the planted pickle is set aside unread and the last recorded version put back
    refused = subprocess.run(sweep_cli(space, root, "--resume"), capture_output=True, text=True, timeout=600)
    assert refused.returncode == 0, refused.stdout + refused.stderr
    warned = [line for line in refused.stderr.splitlines() if "tuner.pkl: not a version this user's hamtune recorded" in line]
    assert len(warned) == 1 and "set aside unread as tuner.pkl.unrecorded" in warned[0], refused.stderr
    assert "Traceback" not in refused.stderr
    assert (root / "z" / "tune" / "tuner.pkl.unrecorded").read_bytes() == planted and tuner.read_bytes() != planted
    assert not marker.exists()


@pytest.mark.slow
def test_resume_refuses_planted_state_and_a_folder_without_a_record(finished_sweep, tmp_path, monkeypatch):
    space, root = finished_sweep
    marker = tmp_path / "pwned"
    planted = copy_of(finished_sweep, tmp_path, "z")  # a folder from elsewhere: no record for this path
    code = subprocess.run(sweep_cli(space, tmp_path, "--resume"), capture_output=True, text=True, timeout=600)
    assert code.returncode == 1 and "no record of its Tune state" in code.stderr, code.stderr
    tune_dir = root / "z" / "tune"
    (tune_dir / "searcher-state-9999-99-99_99-99-99.pkl").write_bytes(pickle.dumps(Payload(marker)))
    code = subprocess.run(sweep_cli(space, root, "--resume"), capture_output=True, text=True, timeout=600)
    assert code.returncode == 1 and "searcher-state-9999" in code.stderr, code.stderr
    (tune_dir / "searcher-state-9999-99-99_99-99-99.pkl").unlink()
    assert not marker.exists() and planted.exists()


def test_a_refused_pickle_gives_hamtunes_advice_never_torchs_weights_only_false(capsys, tmp_path):
    from hamtune.errors import HamtuneError
    from hamtune.train.checkpoint import load_weights

    marker = tmp_path / "pwned"
    (tmp_path / "model.pt").write_bytes(pickle.dumps({"w": Payload(marker)}))
    with pytest.raises(HamtuneError) as caught:
        load_weights(tmp_path / "model.pt")
    message = str(caught.value)
    assert "refused to load" in message and "do not load it with weights_only=False" in message
    assert "Re-running" not in message and "will likely succeed" not in message and not marker.exists()


# ---- 6, 7. one writer per results folder; a name is one folder -------------------------------------


@pytest.mark.slow
def test_a_second_sweep_on_a_folder_in_use_is_refused_naming_the_holder_and_a_dead_holders_lock_is_taken_over(capsys, prepared, tmp_path):
    from hamtune.paths import results_lock

    space = small_space(tmp_path / "same.yaml", prepared, name="same", num_samples=3, max_epochs=2)
    first = subprocess.Popen(sweep_cli(space, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lock = tmp_path / "same" / ".lock"
    deadline = time.time() + 120
    while not (lock.exists() and lock.read_text().strip()) and first.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, first.stdout.read()
    code, _, err = run_cli(capsys, "sweep", space, "--results", tmp_path, "--num-cpus", "1")
    assert_one_line_error(code, err, "in use by another hamtune", f"PID {first.pid}")
    first.kill()
    first.wait(timeout=60)
    first.stdout.read()
    assert lock.read_text().strip() == str(first.pid)  # the dead process's PID is still written there
    with results_lock(tmp_path / "same"):
        assert lock.read_text().strip() == str(os.getpid())


@pytest.mark.parametrize("name", ["../../escaped", "/tmp/escaped", "a/b", "..", ".hidden", "a\\b"])
def test_a_results_name_that_is_not_one_folder_is_refused(capsys, prepared, tmp_path, monkeypatch, name):
    monkeypatch.chdir(tmp_path)
    space = small_space(tmp_path / "s.yaml", prepared, name="ok")
    results = tmp_path / "deep" / "results"
    for argv in (
        ["sweep", space, "--name", name],
        ["train", "--data", prepared.path, "--name", name],
        ["baselines", prepared.path, "--name", name],
    ):
        code, _, err = run_cli(capsys, *argv, "--results", results)
        assert_one_line_error(code, err, "a results name is one folder name", usage=True)
    named = small_space(tmp_path / "named.yaml", prepared, name=name)
    code, _, err = run_cli(capsys, "sweep", named, "--results", results)
    assert_one_line_error(code, err, f"{named}: name:")
    assert not results.exists() and not (tmp_path / "escaped").exists() and not Path("/tmp/escaped").exists()


# ---- 3, 4. sweep options that would hang or run without end ----------------------------------------


@pytest.mark.parametrize(
    "option, value, needle",
    [
        ("--num-samples", "-1", "--num-samples must be at least 1"),
        ("--num-samples", "0", "--num-samples must be at least 1"),
        ("--gpus-per-trial", "-1", "--gpus-per-trial must be 0 or more"),
        ("--gpus-per-trial", "nan", "--gpus-per-trial must be 0 or more"),
        ("--gpus-per-trial", "1.5", "whole number"),
        ("--num-cpus", "0", "--num-cpus must be at least 1"),
    ],
)
def test_sweep_options_that_would_hang_or_never_end_are_refused_up_front(capsys, prepared, tmp_path, option, value, needle):
    space = small_space(tmp_path / "s.yaml", prepared, name="s")
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "sweep", space, "--results", tmp_path, option, value)
    assert_one_line_error(code, err, needle, usage=True)
    assert time.perf_counter() - started < 30 and not (tmp_path / "s" / "trials.parquet").exists()


@pytest.mark.slow
def test_a_trial_asking_for_more_than_the_cluster_has_is_refused_before_it_waits_forever(capsys, prepared, tmp_path, ray_local):
    space = small_space(tmp_path / "s.yaml", prepared, name="s")
    code, _, err = run_cli(capsys, "sweep", space, "--results", tmp_path, "--set", "resources={cpus: 3}")
    assert_one_line_error(code, err, "ask for 3 CPUs each", "has 2")


# ---- 8. a copied results folder uses its own checkpoints, from any working directory ---------------


def test_a_copied_results_folder_exports_its_own_weights_from_any_directory(capsys, prepared, tmp_path, monkeypatch):
    import torch

    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    assert (
        run_cli(
            capsys,
            "train",
            "--data",
            prepared.path,
            "--set",
            "epochs=1",
            "--set",
            "image_size=28",
            "--set",
            "mlp_width=32",
            "--name",
            "x",
            "--results",
            "results",
        )[0]
        == 0
    )
    shutil.copytree(work / "results" / "x", tmp_path / "copy")
    (weights,) = (tmp_path / "copy" / "checkpoints").glob("*/best.pt")  # the delivered (best validation epoch) weights
    state = torch.load(weights, weights_only=True)
    torch.save({k: torch.zeros_like(v) for k, v in state.items()}, weights)  # the copy's own, different weights
    shutil.rmtree(work / "results")
    monkeypatch.chdir(elsewhere)
    code, _, err = run_cli(capsys, "export", tmp_path / "copy", "--out", "model")
    assert code == 0, err
    exported = torch.load(elsewhere / "model" / "model.pt", weights_only=True)
    assert all(torch.count_nonzero(v) == 0 for v in exported.values())


# ---- 5. a killed `data prepare` leaves no workers and no temporaries behind ------------------------

SLOW_PREPARE = """
import sys, time
import hamtune.data.images as images
decode = images._decode_chunk
def slow(job):
    time.sleep(0.5)
    return decode(job)
images._decode_chunk = slow
from hamtune.cli import main
from hamtune.export.bundle import BUNDLE_VERSION
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.slow
def test_a_killed_prepare_takes_its_workers_with_it_and_the_next_run_removes_its_temporary(capsys, release_dir, tmp_path):
    import psutil

    out = tmp_path / "caches" / "ham"
    script = tmp_path / "slow_prepare.py"
    script.write_text(SLOW_PREPARE)
    driver = subprocess.Popen(
        [sys.executable, str(script), "data", "prepare", str(release_dir), "--size", "16", "--workers", "2", "--out", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 120
    workers: list = []
    while time.time() < deadline and driver.poll() is None:
        workers = psutil.Process(driver.pid).children()
        if len(workers) >= 2 and list(out.parent.glob(".ham.tmp-*")):
            break
        time.sleep(0.05)
    assert len(workers) >= 2 and driver.poll() is None, "the prepare ended before it could be killed"
    (temporary,) = out.parent.glob(".ham.tmp-*")
    driver.kill()
    driver.wait(timeout=30)
    gone, alive = psutil.wait_procs(workers, timeout=10)
    assert not alive, [p.pid for p in alive]
    assert temporary.exists()  # what SIGKILL leaves; the next run removes it
    live = out.parent / f".other.tmp-{os.getpid()}-0123abcd"  # a live process's temporary stays
    live.mkdir()
    code, _, err = run_cli(capsys, "data", "prepare", release_dir, "--size", "16", "--workers", "1", "--out", out)
    assert code == 0, err
    assert not temporary.exists() and live.exists() and (out / "manifest.json").exists()


# ---- 9. a run that cannot take one optimiser step is not `completed` -------------------------------


def test_a_run_with_too_few_training_images_for_one_step_is_failed_not_completed(capsys, prepared, tmp_path):
    from hamtune.results.store import load_results

    code, out, err = run_cli(
        capsys,
        "train",
        "--data",
        prepared.path,
        "--set",
        "max_train_images=1",
        "--set",
        "epochs=1",
        "--set",
        "image_size=28",
        "--name",
        "one",
        "--results",
        tmp_path,
    )
    assert code == 0, err
    assert "failed" in out and "an optimiser step needs at least 2" in out
    (row,) = load_results(tmp_path / "one")[0].itertuples()
    assert row.status == "failed" and row.epochs_run == 0 and "max_train_images=1" in row.reason


# ---- 10. images: 16-bit PNG, images too small to mean anything, --size 0 ----------------------------


@pytest.mark.parametrize("channels", [1, 3])
def test_a_16_bit_png_decodes_to_its_grey_not_to_white(tmp_path, channels):
    import io

    import numpy as np
    from PIL import Image

    from hamtune.data.images import Preprocess, decode

    grey = np.full((40, 40), 32896, dtype=np.uint16)  # 128 * 257: mid-grey in 16 bits
    buffer = io.BytesIO()
    Image.fromarray(grey).save(buffer, format="PNG")  # a 16-bit grayscale PNG (mode I;16)
    array, size = decode(buffer.getvalue(), Preprocess(16, "center", channels))
    assert size == (40, 40) and array.shape == (16, 16, channels) and abs(float(array.mean()) - 128) < 1


def test_an_image_too_small_to_hold_a_lesion_is_refused_and_size_0_is_an_error(capsys, tmp_path, trained, release_dir):
    import numpy as np
    from PIL import Image

    photos = tmp_path / "photos"
    photos.mkdir()
    Image.fromarray(np.full((1, 1, 3), 200, dtype=np.uint8)).save(photos / "dot.jpg")
    Image.fromarray(np.full((30, 30, 3), 120, dtype=np.uint8)).save(photos / "fine.jpg")
    assert run_cli(capsys, "export", trained, "--out", tmp_path / "model")[0] == 0
    code, out, err = run_cli(capsys, "score", tmp_path / "model", photos, "--out", tmp_path / "s.csv", "--no-progress")
    assert code == 0, err
    assert "dot.jpg" in err and "smaller than 8 px" in err
    assert "scored 1 image(s)" in out
    code, _, err = run_cli(capsys, "data", "prepare", release_dir, "--size", "0", "--out", tmp_path / "c")
    assert_one_line_error(code, err, "--size must be between 8 and 1024 pixels, got 0", usage=True)


# ---- 11. space files: empty, a condition that can never hold, a key given twice --------------------


def test_an_empty_space_file_a_condition_on_a_value_that_is_not_a_choice_and_a_duplicated_key_are_errors(capsys, tmp_path):
    empty = tmp_path / "empty.yaml"
    empty.write_bytes(b"")
    code, _, err = run_cli(capsys, "sweep", empty, "--results", tmp_path)
    assert_one_line_error(code, err, str(empty), "empty")
    typo = tmp_path / "typo.yaml"
    typo.write_text("params:\n  kind: {choice: [ae, vae]}\n  beta: {float: [0.1, 1.0], when: {kind: vea}}\n")
    code, _, err = run_cli(capsys, "sweep", typo, "--results", tmp_path)
    assert_one_line_error(code, err, str(typo), "params.beta.when.kind", "'vea' is not among params.kind's choices")
    twice = tmp_path / "twice.yaml"
    twice.write_text("num_samples: 2\nparams:\n  lr: {float: [0.001, 0.01]}\nnum_samples: 50\n")
    code, _, err = run_cli(capsys, "sweep", twice, "--results", tmp_path)
    assert_one_line_error(code, err, str(twice), "'num_samples' is given twice (lines 1 and 4)")
    assert not any(tmp_path.glob("*/trials.parquet"))


# ---- 12. baselines refuse settings they would ignore ------------------------------------------------


def test_baselines_refuse_a_set_key_they_do_not_use(capsys, prepared, tmp_path):
    code, _, err = run_cli(capsys, "baselines", prepared.path, "--set", "lr=3", "--results", tmp_path)
    assert_one_line_error(code, err, "--set lr: not used by classical baselines", "split_seed", usage=True)
    assert not (tmp_path / "baselines").exists()


# ---- 13, 14. an edited bundle; score's --out -------------------------------------------------------


@pytest.mark.parametrize(
    "edit, needle",
    [
        ("config_size", "config.json: its sha256 differs"),
        ("both_sizes", "config.json: its sha256 differs"),
        ("threshold", "threshold must be a finite number or null, got 'abc'"),
    ],
)
def test_an_edited_bundle_is_refused_not_used(capsys, trained, tmp_path, edit, needle):
    import numpy as np
    from PIL import Image

    model = tmp_path / "model"
    assert run_cli(capsys, "export", trained, "--out", model)[0] == 0
    config, info = json.loads((model / "config.json").read_text()), json.loads((model / "bundle.json").read_text())
    if edit in ("config_size", "both_sizes"):
        config["image_size"] = 64
    if edit == "both_sizes":
        info["preprocess"]["size"] = 64
    if edit == "threshold":
        info["threshold"] = "abc"
    if edit != "threshold":
        (model / "config.json").write_text(json.dumps(config))
    (model / "bundle.json").write_text(json.dumps(info))
    Image.fromarray(np.full((30, 30, 3), 120, dtype=np.uint8)).save(tmp_path / "a.jpg")
    code, _, err = run_cli(capsys, "score", model, tmp_path / "a.jpg", "--out", tmp_path / "s.csv", "--no-progress")
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "s.csv").exists()


def test_score_out_an_existing_folder_is_an_error_before_scoring(capsys, trained, tmp_path):
    assert run_cli(capsys, "export", trained, "--out", tmp_path / "model")[0] == 0
    (tmp_path / "here").mkdir()
    code, _, err = run_cli(capsys, "score", tmp_path / "model", tmp_path, "--out", tmp_path / "here", "--no-progress")
    assert_one_line_error(code, err, "is a folder", usage=True)


# ---- 14. tracebacks that are now one-line errors ---------------------------------------------------


def test_bad_prepare_inputs_are_one_line_errors(capsys, release_dir, tmp_path):
    import numpy as np

    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "HAM10000_metadata.csv").write_bytes(b"")
    shutil.copytree(release_dir / "HAM10000_images_part_1", empty / "HAM10000_images_part_1")
    code, _, err = run_cli(capsys, "data", "prepare", empty, "--out", tmp_path / "c1")
    assert_one_line_error(code, err, "HAM10000_metadata.csv: the metadata file is empty")
    objects = tmp_path / "dermamnist.npz"
    arrays = {f"{s}_{k}": np.array([object()] * 2, dtype=object) for s in ("train", "val", "test") for k in ("images", "labels")}
    np.savez(objects, **arrays)
    code, _, err = run_cli(capsys, "data", "prepare", objects, "--out", tmp_path / "c2")
    assert_one_line_error(code, err, "dermamnist.npz", "not plain arrays")
    code, _, err = run_cli(capsys, "data", "prepare", release_dir, "--workers", "-3", "--out", tmp_path / "c3")
    assert_one_line_error(code, err, "--workers must be at least 1, got -3", usage=True)
    code, _, err = run_cli(capsys, "data", "prepare", release_dir, "--metadata", tmp_path / "nope.csv", "--out", tmp_path / "c4")
    assert_one_line_error(code, err, "--metadata", "nope.csv: no such file")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(("c", ".c"))]


def test_train_results_naming_a_file_fails_before_training(capsys, prepared, tmp_path):
    (tmp_path / "file").write_text("not a folder")
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "train", "--data", prepared.path, "--set", "epochs=50", "--results", tmp_path / "file")
    assert_one_line_error(code, err, "is a file", usage=True)
    assert time.perf_counter() - started < 20 and (tmp_path / "file").read_text() == "not a folder"


def no_space(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_a_full_disk_during_prepare_is_a_one_line_error_and_leaves_no_temporary(capsys, release_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(os, "posix_fallocate", no_space)
    out = tmp_path / "caches" / "full"
    code, _, err = run_cli(capsys, "data", "prepare", release_dir, "--size", "16", "--workers", "1", "--out", out)
    assert_one_line_error(code, err, "no space left on device")
    assert not out.exists() and list(out.parent.iterdir()) == []


def test_a_full_disk_while_train_writes_its_checkpoint_is_a_one_line_error_and_leaves_no_half_checkpoint(
    capsys, prepared, tmp_path, monkeypatch
):
    import torch

    from hamtune.train import checkpoint

    saved = []

    def save_then_fill(obj, path, *args, **kwargs):
        if saved:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        saved.append(path)
        torch.save(obj, path)

    monkeypatch.setattr(checkpoint.torch, "save", save_then_fill)
    code, _, err = run_cli(
        capsys,
        "train",
        "--data",
        prepared.path,
        "--set",
        "epochs=1",
        "--set",
        "image_size=28",
        "--set",
        "mlp_width=32",
        "--name",
        "full",
        "--results",
        tmp_path,
    )
    assert_one_line_error(code, err, "no space left on device")
    assert saved and not any((tmp_path / "full" / "checkpoints").iterdir())
