"""Sweeps log to experiment trackers through Tune's own callbacks: MLflow for real on a local SQLite store,
TensorBoard event files under tune/, and a one-line error naming the install command for a missing extra."""

from __future__ import annotations

import re
import sys

import pytest
from conftest import tiny_space

from hamtune.errors import HamtuneError
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


def test_a_sweep_logs_config_epochs_and_its_rows_to_mlflow_and_tensorboard(prepared, ray_local, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    from hamtune.sweep.runner import SweepOptions, run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3's local store (it refuses ./mlruns unless MLFLOW_ALLOW_FILE_STORE=true)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    space = tiny_space(prepared, tmp_path / "tracked.yaml", name="tracked", num_samples=2, log_to="tensorboard")
    directory = run_sweep(space, SweepOptions(results_root=tmp_path, log_to=("mlflow",)))
    trials, epochs, _ = load_results(directory)

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == len(trials) == 2
    by_trial = {run.data.tags["trial_name"].rsplit("_", 1)[-1]: run for run in runs}
    for _, row in trials.iterrows():
        run = next(r for name, r in by_trial.items() if row["trial_id"].endswith(name))
        assert run.info.status == "FINISHED" and run.data.tags["hamtune_sweep"] == "tracked"
        assert run.data.params["kind"] == row["kind"] and float(run.data.params["lr"]) == pytest.approx(row["lr"])
        history = client.get_metric_history(run.info.run_id, "val_auroc")
        mine = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch")
        assert [m.value for m in sorted(history, key=lambda m: m.step)] == pytest.approx(list(mine["val_auroc"]))
        assert run.data.metrics["final/val_auroc"] == pytest.approx(row["val_auroc"])  # the delivered model's row
        assert run.data.metrics["final/test_auroc"] == pytest.approx(row["test_auroc"])
    events = list((directory / "tune").glob("*/events.out.tfevents.*"))
    assert len(events) == 2, sorted(p.name for p in (directory / "tune").iterdir())


@pytest.mark.parametrize(("tracker", "extra"), [("mlflow", "hamtune[mlflow]"), ("wandb", "hamtune[wandb]")])
def test_a_tracker_without_its_extra_is_a_one_line_error_naming_the_install(prepared, tmp_path, monkeypatch, tracker, extra):
    from hamtune.sweep.runner import SweepOptions, run_sweep

    monkeypatch.setitem(sys.modules, tracker, None)  # what a machine without the extra sees: ImportError
    space = tiny_space(prepared, tmp_path / "t.yaml", name="t", log_to=[tracker])
    with pytest.raises(HamtuneError, match="^" + re.escape(f'--log-to {tracker} needs its package: pip install "{extra}"') + "$"):
        run_sweep(space, SweepOptions(results_root=tmp_path))
    assert not (tmp_path / "t" / "trials.parquet").exists()


def test_an_unknown_tracker_in_a_space_names_the_file_and_key(prepared, tmp_path):
    with pytest.raises(HamtuneError, match=r"t.yaml: log_to: must be one or a list of mlflow, wandb, tensorboard"):
        tiny_space(prepared, tmp_path / "t.yaml", log_to=["neptune"])
