"""Sweeps log to experiment trackers through Tune's own callbacks: MLflow for real on a local SQLite store,
TensorBoard event files under tune/, and a one-line error naming the install command for a missing extra."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from conftest import TINY_SPACE, tiny_space

import hamtune
from hamtune.errors import HamtuneError
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


def test_mlflow_and_tensorboard_compare_trials_by_the_delivered_model(prepared, ray_local, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    from tensorboardX.proto import event_pb2  # noqa: F401 (tensorboardX reads its own event files below)

    from hamtune.api import after_sweep
    from hamtune.sweep.runner import SweepOptions, run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"  # MLflow 3's local store (it refuses ./mlruns unless MLFLOW_ALLOW_FILE_STORE=true)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    space = tiny_space(prepared, tmp_path / "tracked.yaml", name="tracked", num_samples=2, log_to="tensorboard")
    directory = run_sweep(space, SweepOptions(results_root=tmp_path, log_to=("mlflow",)))
    after_sweep(directory, "tracked", ("tensorboard", "mlflow"))  # what `hamtune sweep` and hamtune.run_sweep do next
    trials, epochs, _ = load_results(directory)

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("tracked")
    runs = client.search_runs([experiment.experiment_id])
    parents = [r for r in runs if r.data.tags.get("hamtune_role") == "sweep"]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId")]
    assert len(parents) == 1 and len(children) == len(trials) == 2 and len(runs) == 3
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.data.params["space.sampler.name"] == "tpe"
    assert parent.data.params["space.num_samples"] == "2" and "versions.torch" in parent.data.params
    assert {"space.yaml", "sweep.json", "results", "report", "model"} <= {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert (directory / "mlartifacts").is_dir()  # a local store keeps artifacts beside the results, not in the working directory
    assert {"report/report.html", "model/bundle.json", "model/model.pt"} <= {
        a.path for folder in ("report", "model") for a in client.list_artifacts(parent.info.run_id, folder)}
    for run in children:
        row = trials.set_index("trial_id").loc[run.data.tags["hamtune_trial_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["status"] == row["status"]
        assert {"weight_decay", "image_size", "seed", "recon_loss", "kind", "lr", "stage"} <= set(run.data.params)  # the full config
        assert float(run.data.params["lr"]) == pytest.approx(row["lr"])
        assert not [k for k in [*run.data.params, *run.data.metrics] if k.startswith("config/") or k in ("pid", "done", "should_checkpoint")]
        assert run.data.metrics["val_auroc"] == pytest.approx(row["val_auroc"])  # the runs table shows the delivered model
        assert run.data.metrics["test_auroc"] == pytest.approx(row["test_auroc"])
        history = sorted(client.get_metric_history(run.info.run_id, "val_auroc"), key=lambda m: (m.step, m.timestamp))
        mine = epochs[epochs["trial_id"] == run.data.tags["hamtune_trial_id"]].sort_values("epoch")
        assert [m.value for m in history[:-1]] == pytest.approx(list(mine["val_auroc"]))
        assert history[-1].value == pytest.approx(row["val_auroc"]) and history[-1].step == row["epochs_run"]

    logs = sorted((directory / "tensorboard").iterdir())
    assert len(logs) == 2 and all(len(p.name) <= 100 and p.name.split("-")[0] in set(trials["trial_id"]) for p in logs)
    assert all("kind=" in p.name and "lr=" in p.name for p in logs)
    from tensorboardX.event_file_writer import EventFileWriter  # noqa: F401
    tags = set()
    for path in logs:
        for event_file in path.rglob("events.out.tfevents.*"):
            tags |= {v.tag for e in _events(event_file) for v in e.summary.value}
    assert {"val_auroc", "train_loss", "final/val_auroc", "final/test_auroc"} <= tags


def test_each_seed_of_a_fused_confirm_trial_is_its_own_mlflow_run_with_its_own_epochs(prepared, ray_local, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    from hamtune.sweep.runner import SweepOptions, run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    space = tiny_space(prepared, tmp_path / "fused.yaml", name="fused", num_samples=1, points_to_evaluate=[], scheduler="none",
                       fixed={**TINY_SPACE["fixed"], "kind": "ae", "arch": "cnn"}, params={"lr": {"float": [1e-3, 5e-3]}},
                       confirm={"top": 1, "seeds": 2}, fuse="on", log_to="mlflow")
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    trials, epochs, _ = load_results(directory)
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("fused").experiment_id])
    children = {r.data.tags["hamtune_trial_id"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert sorted(children) == sorted(trials["trial_id"]) and len(children) == 3
    for row in trials[trials["stage"] == "confirm"].itertuples():
        run = children[row.trial_id]
        assert run.info.status == "FINISHED" and run.data.params["seed"] == str(int(row.seed))
        history = sorted(client.get_metric_history(run.info.run_id, "val_auroc"), key=lambda m: (m.step, m.timestamp))
        mine = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")
        assert [m.value for m in history[:-1]] == pytest.approx(list(mine["val_auroc"])) and len(mine) == 2
        assert history[-1].value == pytest.approx(row.val_auroc)

    member = trials.loc[trials["stage"] == "confirm", "trial_id"].iloc[-1]  # a seed's own checkpoint exports and scores as its row
    bundle = hamtune.export_model(directory, tmp_path / "member", trial=member)
    table = hamtune.score(bundle, prepared.path).set_index("image")
    mine = load_results(directory)[2].query("trial_id == @member").set_index("image_id")
    np.testing.assert_allclose(table.loc[mine.index, "score"], mine["score"], rtol=0, atol=1e-5)


def test_wandb_offline_groups_a_sweep_run_its_trial_runs_and_a_report_run(prepared, ray_local, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason='the optional extra: pip install "hamtune[wandb]"')
    from hamtune.api import after_sweep
    from hamtune.sweep.runner import SweepOptions, run_sweep

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "hamtune-test")
    space = tiny_space(prepared, tmp_path / "wb.yaml", name="wb", num_samples=2)
    directory = run_sweep(space, SweepOptions(results_root=tmp_path, log_to=("wandb",)))
    after_sweep(directory, "wb", ("wandb",))
    trials, epochs, _ = load_results(directory)

    runs = {}
    for path in sorted((directory / "wandb").glob("offline-run-*/run-*.wandb")):
        records = list(_wandb_records(path))
        assert records, f"{path}: an empty run file"
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        runs[run.display_name] = {
            "run": run, "exit": [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"],
            "config": _items(i for r in records for i in
                             (r.config.update if r.WhichOneof("record_type") == "config" else r.run.config.update if r.WhichOneof("record_type") == "run" else ())),
            "summary": _items(i for r in records if r.WhichOneof("record_type") == "summary" for i in r.summary.update),
            "history": [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"],
            "artifacts": {r.artifact.type for r in records if r.WhichOneof("record_type") == "artifact"},
        }
    by_job = {}
    for name, run in runs.items():
        assert run["run"].run_group == "wb" and run["exit"], f"{name}: not in the sweep's group, or never finished"
        by_job.setdefault(run["run"].job_type, []).append(run)
    assert {job: len(found) for job, found in by_job.items()} == {"sweep": 1, "trial": 2, "report": 1}
    assert {"space", "results"} <= by_job["sweep"][0]["artifacts"] and by_job["report"][0]["artifacts"] == {"report"}
    assert by_job["sweep"][0]["config"]["space.num_samples"] == 2
    for run in by_job["trial"]:
        trial_id = run["run"].display_name.split("-")[0]
        row = trials.set_index("trial_id").loc[trial_id]
        assert {"weight_decay", "image_size", "seed", "kind", "lr", "stage"} <= set(run["config"])  # the full config
        assert run["summary"]["val_auroc"] == pytest.approx(row["val_auroc"]) and run["summary"]["status"] == row["status"]
        assert run["exit"] == [0] and not [k for k in run["summary"] if k.startswith("config/") or k in ("pid", "done")]
        mine = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        logged = [h["val_auroc"] for h in run["history"] if "val_auroc" in h]
        assert logged == pytest.approx(list(mine["val_auroc"]))


def _items(items) -> dict:
    """A run file's key/value items (the key is `key`, or `nested_key` joined by dots) as plain values."""
    return {i.key or ".".join(i.nested_key): json.loads(i.value_json) for i in items}


def _wandb_records(path):
    """The records of an offline W&B run file: LevelDB log framing (a 7-byte file header, then 32 KiB blocks of
    chunks: crc, length, type; FULL=1, FIRST=2, MIDDLE=3, LAST=4) around protobuf Records."""
    import struct

    from wandb.proto import wandb_internal_pb2

    data, at, pending, block = path.read_bytes(), 7, b"", 32768
    assert data[:4] == b":W&B"
    while at + 7 <= len(data):
        if block - at % block < 7:  # the rest of a block too short for a header is padding
            at += block - at % block
            continue
        length, kind = struct.unpack("<HB", data[at + 4:at + 7])
        pending += data[at + 7:at + 7 + length]
        at += 7 + length
        if kind in (1, 4):
            yield wandb_internal_pb2.Record.FromString(pending)
            pending = b""


def _events(path):
    """The records of a TensorBoard event file (TFRecord framing: length, crc, data, crc)."""
    import struct

    from tensorboardX.proto import event_pb2

    data, at = path.read_bytes(), 0
    while at < len(data):
        (length,) = struct.unpack("<Q", data[at:at + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[at + 12:at + 12 + length])
        yield event
        at += 12 + length + 4


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
