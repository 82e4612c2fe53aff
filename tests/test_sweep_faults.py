"""Interrupted sweeps resume to exactly num_samples trials; a killed worker retries from its checkpoint."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SPACE

from hamtune.sweep.results import load_results

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


def start_and_interrupt(command: list[str], results: Path, sig: int, after: int) -> tuple[int, set[str]]:
    """Run a sweep driver and send it `sig` once `after` trials are recorded; returns its exit code and those trials."""
    driver = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=os.environ.copy())
    deadline = time.time() + 240
    while consistent_snapshot(results) < after and driver.poll() is None and time.time() < deadline:
        time.sleep(0.1)
    assert driver.poll() is None, f"the sweep ended before it could be interrupted:\n{driver.stdout.read()}"
    before = set(load_results(results)[0]["trial_id"])
    driver.send_signal(sig)
    code = driver.wait(timeout=120)
    driver.stdout.read()
    return code, before


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["sigkill", "sigint"])
def test_killed_driver_resumes_to_exactly_num_samples(prepared, tmp_path, sig):
    space = write_space(tmp_path / "resume.yaml", prepared, name="resume")
    results = tmp_path / "resume"
    code, before = start_and_interrupt(sweep_command(space, tmp_path), results, sig, after=2)
    if sig == signal.SIGINT:
        assert code == 130
    done = subprocess.run(sweep_command(space, tmp_path, "--resume"), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout + done.stderr
    trials, epochs, scores = load_results(results)
    assert len(trials) == 6 and trials["trial_id"].is_unique
    assert before <= set(trials["trial_id"])
    assert set(trials["status"]) == {"completed"}
    assert (epochs.groupby("trial_id")["epoch"].apply(list).map(sorted) == pd_list([1, 2, 3], len(trials))).all()
    assert scores.groupby("trial_id").size().nunique() == 1


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


def test_killed_trial_worker_is_retried_from_its_checkpoint(prepared, tmp_path):
    """os.kill of the actor's pid mid-trial: FailureConfig retries it from its last checkpoint."""
    space = write_space(tmp_path / "kill.yaml", prepared, name="kill", num_samples=1, max_epochs=6, max_failures=2,
                        params={"kind": {"choice": ["ae"]}, "arch": {"choice": ["cnn"]}})
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
