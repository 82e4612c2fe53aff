"""Interrupted sweeps resume to exactly num_samples trials; a killed worker retries from its checkpoint."""

from __future__ import annotations

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import nullcontext
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SPACE
from s3server import bucket_files, s3_bucket

from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


def write_space(path: Path, prepared, **changes) -> Path:
    raw = {**TINY_SPACE, "data": str(prepared.path), "num_samples": 6, "max_epochs": 3, "points_to_evaluate": [], **changes}
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    return path


def sweep_command(space: Path, results: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(results), "--num-cpus", "2", *extra]


def consistent_snapshot(results: Path) -> int:
    """Read the results the way the report does while the sweep writes them; every trial listed must
    come with all its epochs and scores. Returns how many trials the snapshot holds."""
    if not (results / "trials.parquet").exists():
        return 0
    trials, epochs, scores = load_results(results)
    per_trial = epochs.groupby("trial_id").size()
    for row in trials.itertuples():
        assert per_trial.get(row.trial_id, 0) == row.epochs_run, row.trial_id
    assert set(scores["trial_id"]) == set(trials["trial_id"])
    return len(trials)


def start_and_interrupt(command: list[str], results: Path, sig: int, ready: Callable[[], bool]) -> tuple[int, set[str]]:
    """Run a sweep driver and send it `sig` once `ready()`; returns its exit code and the trials recorded by then."""
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    deadline = time.time() + 240
    while not ready() and driver.poll() is None and time.time() < deadline:
        time.sleep(0.05)
    assert driver.poll() is None, f"the sweep ended before it could be interrupted:\n{driver.stdout.read()}"
    before = set(load_results(results)[0]["trial_id"]) if (results / "trials.parquet").exists() else set()
    driver.send_signal(sig)
    code = driver.wait(timeout=120)
    driver.stdout.read()
    return code, before


PARETO = {
    "objective": [{"metric": "val_ssim", "mode": "max"}, {"metric": "val_auroc", "mode": "max"}],
    "sampler": {"name": "nsga2", "population_size": 4},
}


@pytest.mark.parametrize(
    ("sig", "changes", "storage"),
    [(signal.SIGKILL, {}, "s3://sweeps/hamtune"), (signal.SIGINT, PARETO, None)],
    ids=["sigkill-s3-storage", "sigint-multi-objective-nsga2"],
)
def test_killed_driver_resumes_to_exactly_num_samples(prepared, tmp_path, sig, changes, storage):
    """Killed once two of four trials are recorded (two run at once), so two are left to resume. The two cases cover
    both signals and both kinds of sampler state (TPE's single objective, NSGA-II's population) at half the cost of
    all four pairs. The SIGKILL case keeps Tune's experiment and checkpoints in a bucket of a real S3-compatible
    server (`--storage s3://`): the resume restores and checks them there, and report and export read the results."""
    space = write_space(tmp_path / "resume.yaml", prepared, name="resume", num_samples=4, max_epochs=2, **changes)
    results = tmp_path / "resume"
    extra = ["--storage", storage] if storage else []
    with s3_bucket("sweeps") if storage else nullcontext():
        code, before = start_and_interrupt(sweep_command(space, tmp_path, *extra), results, sig, lambda: consistent_snapshot(results) >= 2)
        if sig == signal.SIGINT:
            assert code == 130
        done = subprocess.run(sweep_command(space, tmp_path, *extra, "--resume"), capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        if storage:
            held = bucket_files(f"{storage}/resume/tune")
            assert any("experiment_state" in path for path in held) and any("/checkpoint_" in path for path in held), held
            assert not (results / "tune").exists()
            exported = subprocess.run(
                [sys.executable, "-m", "hamtune", "export", str(results), "--out", str(tmp_path / "bundle")], capture_output=True, text=True
            )
            assert exported.returncode == 0 and (tmp_path / "bundle" / "model.pt").is_file(), exported.stdout + exported.stderr
            shown = subprocess.run([sys.executable, "-m", "hamtune", "report", str(results), "--no-html"], capture_output=True, text=True)
            assert shown.returncode == 0 and "resume" in shown.stdout, shown.stdout + shown.stderr
    trials, epochs, scores = load_results(results)
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert before <= set(trials["trial_id"]) and len(before) < 4
    assert set(trials["status"]) == {"completed"}, trials[["trial_id", "status", "reason"]].to_string() + done.stdout[-3000:]
    assert (epochs.groupby("trial_id")["epoch"].apply(list).map(sorted) == pd_list([1, 2], len(trials))).all()
    assert scores.groupby("trial_id").size().nunique() == 1


CONFIRM = {
    "num_samples": 3,
    "max_epochs": 2,
    "scheduler": {"name": "asha", "grace_period": 1},
    "confirm": {"top": 2, "seeds": 2, "keep": 2},
}


def assert_confirmed(results: Path) -> None:
    """The CONFIRM sweep ended with exactly its planned trials: 3 searched, the best 2 on 2 new seeds each, all
    completed, and the ensemble of the 2 best seeds on validation of the configuration best on the mean delivered once."""
    from hamtune.api import configurations, deliver_confirmed

    trials = load_results(results)[0]
    search, confirm = trials[trials["stage"] == "search"], trials[trials["stage"] == "confirm"]
    assert len(search) == 3 and len(confirm) == 4 and trials["trial_id"].is_unique, trials[["trial_id", "stage"]].to_string()
    plan = json.loads((results / "confirm.json").read_text())
    best = search.sort_values("val_auroc", ascending=False, kind="stable")["trial_id"].head(2)
    assert sorted(plan["configurations"]) == sorted(best) == sorted(set(confirm["config_id"]))
    originals = search.set_index("trial_id")["seed"]
    for config_id, seeds in confirm.groupby("config_id")["seed"]:
        assert sorted(seeds) == [originals[config_id] + 1, originals[config_id] + 2]
    assert (confirm["status"] == "completed").all() and (confirm["epochs_run"] == 2).all()  # ASHA does not stop a seed
    table = configurations(results)
    assert list(table["n"][:2]) == [3, 3] and set(table["config_id"][:2]) == set(best)
    means = trials.groupby("config_id")["val_auroc"].mean()
    assert table["config_id"].iloc[0] == means[list(best)].idxmax()
    delivered = trials[trials["kind"] == "ensemble"]  # the chosen configuration's seed ensemble, built after the sweep
    chosen = trials[trials["config_id"] == table["config_id"].iloc[0]].sort_values("val_auroc", ascending=False, kind="stable")
    assert len(chosen) == 3 and len(delivered) == 1 and delivered["model"].iloc[0] == "seed-ensemble-2-of-3"
    kept = chosen["trial_id"].isin(delivered["members"].iloc[0].split(","))
    assert kept.sum() == 2 and chosen.loc[kept, "val_auroc"].min() >= chosen.loc[~kept, "val_auroc"].max()  # keep: 2
    assert deliver_confirmed(results)["trial_id"] == delivered["trial_id"].iloc[0]  # found again, not built twice
    assert len(load_results(results)[0]) == len(trials)


def kill_moment(kind: str, results: Path, rng: random.Random) -> tuple[str, Callable[[], bool]]:
    """A moment of the confirm stage to SIGKILL the driver at, with a random delay after it (seeded): `plan` once the
    confirm plan is written (the searcher handing Tune the confirm trials); `save` once this driver has saved its
    searcher state to the results folder after the plan (Tune's background copy racing its next save: the moment a
    state file can reach the folder before its digest is recorded); `row` once a confirm trial's row is recorded."""
    delay = round(rng.uniform(0, 0.4), 2)
    since = time.time()
    rows = rng.choice([4, 5])
    conditions = {
        "plan": lambda: (results / "confirm.json").exists(),
        "save": lambda: any(
            modified(path) > max(since, modified(results / "confirm.json")) for path in (results / "tune").glob("searcher-state-*.pkl")
        ),
        "row": lambda: consistent_snapshot(results) >= rows,
    }
    condition = conditions[kind]

    def ready() -> bool:
        if not condition():
            return False
        time.sleep(delay)
        return True

    return f"{kind}{f'>={rows}' if kind == 'row' else ''}+{delay}s", ready


def modified(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def kill_and_resume(space: Path, root: Path, kinds: list[str], rng: random.Random) -> tuple[list[str], subprocess.CompletedProcess]:
    """Start the sweep, SIGKILL it at each moment in turn (each resume killed at the next), then resume it to its end;
    returns the moments as killed at (for the failure message) and the last driver's run."""
    results = root / yaml.safe_load(space.read_text())["name"]
    command, killed = sweep_command(space, root), []
    for kind in kinds:
        label, ready = kill_moment(kind, results, rng)
        start_and_interrupt(command, results, signal.SIGKILL, ready)
        killed.append(label)
        command = sweep_command(space, root, "--resume")
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"killed at {killed}:\n{done.stdout}{done.stderr}"
    return killed, done


def test_a_confirm_stage_killed_at_several_moments_resumes_each_time_to_exactly_its_trials(prepared, tmp_path):
    """3 search trials, then the best 2 by validation on 2 new seeds each. One sweep killed three times in its confirm
    stage (as the plan is written, as the resumed driver saves its searcher state, as a confirm row is recorded; seeded
    delays), resumed after each, ends with its planned trials, chooses on the mean and shows progress and the table."""
    rng = random.Random(20261207)
    space = write_space(tmp_path / "kills.yaml", prepared, name="kills", **CONFIRM)
    killed, done = kill_and_resume(space, tmp_path, ["plan", "save", "row"], rng)
    print("killed at", killed)
    assert re.search(r"\[\d/7\] trial \w+ .*; \d running, (about \d+ min|under a minute) left", done.stderr), done.stderr  # progress
    assert_confirmed(tmp_path / "kills")
    report = subprocess.run(
        [sys.executable, "-m", "hamtune", "report", str(tmp_path / "kills"), "--no-html"], capture_output=True, text=True
    )
    assert "Configurations over seeds" in report.stdout and "+-" in report.stdout, report.stdout + report.stderr


def pd_list(value: list, n: int):
    import pandas as pd

    return pd.Series([value] * n).values


def trial_results(results: Path) -> dict[str, list[dict]]:
    """Per trial directory, the results Tune has written so far (result.json lines)."""
    out = {}
    for path in (results / "tune").glob("*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        out[path.parent.name] = lines
    return out


def named_in_saved_state(results: Path) -> set[str]:
    """IDs of the unfinished trials whose checkpoint Tune's saved experiment state names."""
    import ray.cloudpickle

    states = sorted((results / "tune").glob("experiment_state-*.json"), key=lambda path: path.stat().st_mtime)
    try:
        trial_data = json.loads(states[-1].read_text())["trial_data"] if states else []
    except (json.JSONDecodeError, OSError):  # being rewritten
        return set()
    named = set()
    for trial, metadata in trial_data:
        trial, manager = json.loads(trial), json.loads(metadata)["checkpoint_manager"]
        latest = ray.cloudpickle.loads(bytes.fromhex(manager["value"])).latest_checkpoint_result
        if trial["status"] not in ("TERMINATED", "ERROR") and latest is not None:
            named.add(trial["trial_id"])
    return named


def unfinished_checkpoints(results: Path) -> dict[Path, list[Path]]:
    """Checkpoint folders, oldest first, of each trial not yet in trials.parquet that the saved state
    names a checkpoint of."""
    recorded = set(load_results(results)[0]["trial_id"]) if (results / "trials.parquet").exists() else set()
    found = {}
    for trial_id in named_in_saved_state(results) - recorded:
        for folder in (results / "tune").glob(f"run_trial_{trial_id}_*"):
            found[folder] = sorted(folder.glob("checkpoint_*"))
    return found


def settled(results: Path) -> dict[Path, list[Path]]:
    """unfinished_checkpoints once the killed cluster's workers have stopped writing."""
    seen, deadline = None, time.time() + 20
    while time.time() < deadline:
        now = unfinished_checkpoints(results)
        if now == seen:
            return now
        seen = now
        time.sleep(1.0)
    return seen


def test_resume_survives_a_state_naming_a_deleted_checkpoint(prepared, tmp_path):
    """A driver killed after Tune deleted a trial's older checkpoint but before its state reached disk
    leaves a state naming a folder that is gone. Killed while two trials are unfinished: in one, a newer checkpoint
    survives ("moved") and the trial goes on from it; in the other none does ("lost") and it starts over. Both
    complete."""
    space = write_space(tmp_path / "gone.yaml", prepared, name="gone", num_samples=4, max_epochs=4)
    results = tmp_path / "gone"
    start_and_interrupt(sweep_command(space, tmp_path), results, signal.SIGKILL, lambda: len(unfinished_checkpoints(results)) >= 2)
    damaged = settled(results)
    assert len(damaged) >= 2 and all(damaged.values()), f"two unfinished trials with checkpoints were expected: {damaged}"
    moved = sorted(damaged)[0]
    for folder, checkpoints in damaged.items():
        if folder == moved:
            index = int(checkpoints[-1].name.split("_")[1])
            checkpoints.pop().rename(folder / f"checkpoint_{index + 1:06d}")
        for checkpoint in checkpoints:
            shutil.rmtree(checkpoint)
    done = subprocess.run(sweep_command(space, tmp_path, "--resume"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "resuming from checkpoint_" in done.stderr and "the trial starts over" in done.stderr, done.stderr  # both logged
    trials, epochs, _ = load_results(results)
    assert len(trials) == 4 and set(trials["status"]) == {"completed"}, trials[["trial_id", "status", "reason"]].to_string()
    assert (epochs.groupby("trial_id")["epoch"].apply(sorted) == pd_list([1, 2, 3, 4], 4)).all()
    steps = [(r["training_iteration"], r["epoch"]) for r in trial_results(results)[moved.name] if "epoch" in r]
    assert all(epoch >= step for step, epoch in steps), f"{moved.name} did not go on from its newest checkpoint: {steps}"
    for folder in damaged:
        assert len(list(folder.glob("checkpoint_*"))) == 1


@pytest.mark.parametrize("where", ["local", "s3"])
def test_repair_puts_the_newest_complete_checkpoint_where_a_missing_one_is_named(tmp_path, where):
    """Both where Tune keeps checkpoints: a local folder, and a bucket of a real S3-compatible server, which has no
    folders to rename (a rename of one failed there with NoSuchKey in a resumed sweep)."""
    import pyarrow.fs as pafs
    from ray import tune

    from hamtune.sweep.tune.repair import is_complete, repair_checkpoint
    from hamtune.train import checkpoint as ckpt

    with s3_bucket("repair") if where == "s3" else nullcontext():
        uri = "s3://repair/trial" if where == "s3" else str(tmp_path)
        filesystem, root = pafs.FileSystem.from_uri(uri)

        def make(name: str, complete: bool) -> None:
            filesystem.create_dir(f"{root}/{name}")
            for file in ckpt.RESUME_FILES[: 4 if complete else 2]:
                with filesystem.open_output_stream(f"{root}/{name}/{file}") as out:
                    out.write(name.encode())

        def named(name: str) -> tune.Checkpoint:
            return tune.Checkpoint(f"{uri}/{name}")

        def folders() -> list[str]:
            found = filesystem.get_file_info(pafs.FileSelector(root))
            return sorted(info.base_name for info in found if info.type == pafs.FileType.Directory)

        make("checkpoint_000001", True)
        assert repair_checkpoint(named("checkpoint_000001")) is None
        make("checkpoint_000003", True)
        make("checkpoint_000004", False)
        assert "resuming from checkpoint_000003" in repair_checkpoint(named("checkpoint_000002"))
        with filesystem.open_input_stream(f"{root}/checkpoint_000002/{ckpt.HISTORY}") as moved:
            assert moved.read() == b"checkpoint_000003"
        assert folders() == ["checkpoint_000001", "checkpoint_000002"]
        filesystem.delete_dir(f"{root}/checkpoint_000002")
        make("checkpoint_000005", False)
        assert "starts over" in repair_checkpoint(named("checkpoint_000002"))
        assert folders() == ["checkpoint_000001", "checkpoint_000002"]
        assert not is_complete(named("checkpoint_000002")) and is_complete(named("checkpoint_000001"))


def test_killed_trial_worker_is_retried_from_its_checkpoint(prepared, tmp_path):
    """os.kill of the actor's pid mid-trial: FailureConfig retries it from its last checkpoint."""
    space = write_space(
        tmp_path / "kill.yaml",
        prepared,
        name="kill",
        num_samples=1,
        max_epochs=6,
        max_failures=2,
        params={"kind": {"choice": ["ae"]}, "arch": {"choice": ["cnn"]}},
    )
    results = tmp_path / "kill"
    driver = subprocess.Popen(sweep_command(space, tmp_path), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim, deadline = None, time.time() + 240
    while victim is None and time.time() < deadline and driver.poll() is None:
        for lines in trial_results(results).values():
            if lines and lines[-1]["epoch"] >= 2:
                victim = lines[-1]["pid"]
        time.sleep(0.2)
    assert victim is not None, "no trial reported two epochs"
    os.kill(victim, signal.SIGKILL)
    output, _ = driver.communicate(timeout=600)
    assert driver.returncode == 0, output
    assert "retrying from its last checkpoint" in output
    trials, epochs, _ = load_results(results)
    assert len(trials) == 1 and trials["status"][0] == "completed"
    assert sorted(epochs["epoch"]) == [1, 2, 3, 4, 5, 6]
    reported = [r["epoch"] for lines in trial_results(results).values() for r in lines]
    assert reported.count(1) == 1, f"the retry started over instead of resuming: {reported}"


FUSED_CONFIRM = {
    "fixed": {**TINY_SPACE["fixed"], "kind": "ae", "arch": "cnn"},
    "params": {"latent_dim": {"int": [4, 32], "log": True}, "lr": {"float": [1e-3, 5e-3], "log": True}},
    "scheduler": "none",
    "confirm": {"top": 1, "seeds": 2},
    "fuse": "on",
}


def test_a_fused_confirm_group_killed_mid_training_resumes_and_gives_each_seed_its_lone_result(prepared, tmp_path):
    """fuse: on puts the confirmed configuration's 2 seeds in one trial; SIGKILL once the group has checkpointed."""
    from hamtune.train.config import TrainConfig
    from hamtune.train.loop import train

    space = write_space(tmp_path / "fused.yaml", prepared, name="fused", num_samples=2, max_epochs=2, **FUSED_CONFIRM)
    results = tmp_path / "fused"
    start_and_interrupt(
        sweep_command(space, tmp_path), results, signal.SIGKILL, lambda: any((results / "tune").glob("*/checkpoint_*/group.json"))
    )
    done = subprocess.run(sweep_command(space, tmp_path, "--resume"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "(fused with 1 more)" in done.stderr, done.stderr  # a progress line: logged to stderr
    plan = json.loads((results / "confirm.json").read_text())
    assert plan["trials"] == 2 and plan["tune_trials"] == 1 and not plan["not_fused"]
    trials, epochs, _ = load_results(results)
    confirm = trials[trials["stage"] == "confirm"]
    assert len(trials[trials["stage"] == "search"]) == 2 and len(confirm) == 2 and trials["trial_id"].is_unique
    assert (confirm["status"] == "completed").all() and (confirm["epochs_run"] == 2).all()
    for row in confirm.itertuples():
        assert row.trial_id.endswith(f"-s{int(row.seed)}")
        folder = results / row.checkpoint
        assert folder.name.startswith("member-") and (folder / "best.pt").exists()
        alone = train(TrainConfig.from_dict(json.loads((folder / "config.json").read_text())), prepared, selection=("val_auroc", "max"))
        mine = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")
        # rel 3e-3: grouped and single convolutions sum in another order; the base commit of this stop (2737e2b, no training
        # change) measured 2.7e-3 at epoch 2 on this machine, identically in three runs, past the earlier 2e-3
        assert list(mine["val_loss"]) == pytest.approx([h["val_loss"] for h in alone.history], rel=3e-3)
        assert row.val_auroc == pytest.approx(alone.final["val_auroc"], abs=0.01)
