"""Sweeps log to experiment trackers for real (MLflow on a local SQLite store, W&B offline, TensorBoard event
files), every tracker and the Optuna study name the one chosen model (chosen.json), and a missing extra is a
one-line error naming the install command."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest
from conftest import TINY_SPACE, tiny_space

import hamtune
from hamtune.errors import HamtuneError
from hamtune.results.chosen import chosen_of
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def mlflow_sweep(prepared, ray_local, tmp_path_factory):
    """A 2-trial sweep logged to MLflow (a local SQLite store) and TensorBoard: (results folder, tracking URI)."""
    pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    from hamtune.api import after_sweep
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    root = tmp_path_factory.mktemp("tracked")
    uri = f"sqlite:///{root / 'mlflow.db'}"  # MLflow 3's local store (it refuses ./mlruns unless MLFLOW_ALLOW_FILE_STORE=true)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        space = tiny_space(prepared, root / "tracked.yaml", name="tracked", num_samples=2, log_to="tensorboard")
        directory = run_sweep(space, SweepOptions(results_root=root, log_to=("mlflow",)))
        after_sweep(
            directory, "tracked", ("tensorboard", "mlflow"), floor=space.floor
        )  # what `hamtune sweep` and hamtune.run_sweep do next
    return directory, uri


def test_mlflow_and_tensorboard_compare_trials_by_the_delivered_model(mlflow_sweep):
    import mlflow
    from tensorboardX.proto import event_pb2  # noqa: F401 (tensorboardX reads its own event files below)

    directory, uri = mlflow_sweep
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
        a.path for folder in ("report", "model") for a in client.list_artifacts(parent.info.run_id, folder)
    }
    for run in children:
        row = trials.set_index("trial_id").loc[run.data.tags["hamtune_trial_id"]]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id and run.info.status == "FINISHED"
        assert run.data.tags["status"] == row["status"]
        assert {"weight_decay", "image_size", "seed", "recon_loss", "kind", "lr", "stage"} <= set(run.data.params)  # the full config
        assert float(run.data.params["lr"]) == pytest.approx(row["lr"])
        assert not [
            k for k in [*run.data.params, *run.data.metrics] if k.startswith("config/") or k in ("pid", "done", "should_checkpoint")
        ]
        assert not {"val_fraction", "test_fraction", "seed", "lr"} & set(run.data.metrics)  # configuration: parameters only
        assert run.data.params["val_fraction"] == str(row["val_fraction"])
        assert run.data.metrics["best_val_auroc"] == pytest.approx(row["val_auroc"])  # the delivered model, under its own key
        assert run.data.metrics["best_test_auroc"] == pytest.approx(row["test_auroc"])
        assert run.data.metrics["best_epoch"] == row["best_epoch"] and "best_best_epoch" not in run.data.metrics
        history = sorted(client.get_metric_history(run.info.run_id, "val_auroc"), key=lambda m: (m.step, m.timestamp))
        mine = epochs[epochs["trial_id"] == run.data.tags["hamtune_trial_id"]].sort_values("epoch")
        assert [(m.step, m.value) for m in history] == [(e, pytest.approx(v)) for e, v in zip(mine["epoch"], mine["val_auroc"])]
    chosen = chosen_of(directory)  # a plain sweep delivers one of its trials: its own run is tagged, no run is added
    assert parent.data.tags["hamtune.chosen_trial_id"] == chosen.trial_id and chosen.trial_id in set(trials["trial_id"])
    assert [r.data.tags["hamtune_trial_id"] for r in children if r.data.tags.get("hamtune.delivered") == "true"] == [chosen.trial_id]
    assert parent.data.metrics["best_val_auroc"] == pytest.approx(chosen.metrics["val_auroc"])

    logs = sorted((directory / "tensorboard").iterdir())
    trial_logs = [p for p in logs if not p.name.startswith("delivered-")]
    assert [p.name for p in logs if p not in trial_logs] == [f"delivered-{chosen.trial_id}"]
    assert len(trial_logs) == 2 and all(len(p.name) <= 100 and p.name.split("-")[0] in set(trials["trial_id"]) for p in trial_logs)
    assert all("kind=" in p.name and "lr=" in p.name for p in trial_logs)
    assert not list((directory / "tune").rglob("events.out.tfevents.*"))  # Tune's own: each trial would show twice
    assert list((directory / "tune").rglob("result.json"))
    scalars = {
        p.name: {v.tag: v.simple_value for f in p.rglob("events.out.tfevents.*") for e in _events(f) for v in e.summary.value} for p in logs
    }
    for path in trial_logs:
        assert {"val_auroc", "train_loss", "best_val_auroc", "best_test_auroc"} <= set(scalars[path.name])
        assert not [t for t in scalars[path.name] if "fraction" in t or t.startswith("final/")]
    assert scalars[f"delivered-{chosen.trial_id}"]["best_val_auroc"] == pytest.approx(chosen.metrics["val_auroc"])


def test_the_mlflow_server_serves_the_store_a_sweep_wrote(mlflow_sweep, tmp_path):
    """The UI path the README gives: `mlflow server` (the full package, hamtune[mlflow]) on a store a sweep wrote,
    queried over HTTP (the REST API the UI uses), on 127.0.0.1 and a free port, bounded in time."""
    pytest.importorskip(
        "flask", reason='`mlflow server` needs the full mlflow package (mlflow-skinny has no UI): pip install "hamtune[mlflow]"'
    )
    pytest.importorskip("mlflow.server", reason='`mlflow server` needs the full mlflow package: pip install "hamtune[mlflow]"')
    import os
    import signal
    import socket
    import subprocess
    import time
    import urllib.request

    from hamtune.results.chosen import chosen_of

    directory, uri = mlflow_sweep
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "server.log"
    with open(log, "wb") as err:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "server",
                "--backend-store-uri",
                uri,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                "--workers",
                "1",
            ],
            cwd=tmp_path,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )  # its own process group: its workers end with it
    try:
        deadline = time.monotonic() + 240  # generous: it took 119 s here on 2 cores at load 29
        while True:
            assert server.poll() is None, f"mlflow server exited: {log.read_text()[-2000:]}"
            try:
                with urllib.request.urlopen(f"{base}/health", timeout=5) as reply:
                    if reply.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, f"mlflow server not up in 240 s: {log.read_text()[-2000:]}"
            time.sleep(1)

        def call(path: str, body: dict | None = None) -> dict:
            data = None if body is None else json.dumps(body).encode()
            request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", data=data, headers={"Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=30) as reply:
                return json.loads(reply.read())

        experiment = call("experiments/get-by-name?experiment_name=tracked")["experiment"]
        runs = call("runs/search", {"experiment_ids": [experiment["experiment_id"]], "max_results": 100})["runs"]
        tags = [{t["key"]: t["value"] for t in run["data"].get("tags", [])} for run in runs]
        parent = next(t for t in tags if t.get("hamtune_role") == "sweep")
        assert len(runs) == 3 and parent["hamtune.chosen_trial_id"] == chosen_of(directory).trial_id
        with urllib.request.urlopen(base + "/", timeout=30) as reply:  # the UI's page itself
            assert reply.status == 200 and b"<html" in reply.read().lower()
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()


def test_every_tracker_and_the_study_name_the_chosen_seed_ensemble_and_mlflow_serves_it(
    prepared, release_dir, ray_local, tmp_path, monkeypatch
):
    """A confirm stage (its seeds fused: one Tune trial, a run per seed) delivers a seed ensemble no Tune trial
    trained: MLflow's parent tag, the W&B sweep summary, the Optuna study and TensorBoard all name it, as chosen.json
    does; its MLflow Model scores JPEGs as `hamtune score` scores them."""
    mlflow = pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    pytest.importorskip("wandb", reason='the optional extra: pip install "hamtune[wandb]"')
    pyfunc = pytest.importorskip("mlflow.pyfunc")
    import optuna
    import pandas as pd

    from hamtune.api import after_sweep
    from hamtune.sweep.study import study_url
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "hamtune-test")
    space = tiny_space(
        prepared,
        tmp_path / "fused.yaml",
        name="fused",
        num_samples=1,
        points_to_evaluate=[],
        scheduler="none",
        fixed={**TINY_SPACE["fixed"], "kind": "ae", "arch": "cnn"},
        params={"lr": {"float": [1e-3, 5e-3]}},
        confirm={"top": 1, "seeds": 2},
        fuse="on",
        log_to=["mlflow", "wandb", "tensorboard"],
    )
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    after_sweep(directory, "fused", space.log_to, floor=space.floor)  # what `hamtune sweep` and hamtune.run_sweep do next
    trials, epochs, _ = load_results(directory)
    chosen = chosen_of(directory)
    assert chosen.is_ensemble and chosen.trial_id in set(trials["trial_id"]) and len(chosen.members) == 3  # the search draw + 2 seeds

    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("fused").experiment_id])
    parent = next(r for r in runs if r.data.tags.get("hamtune_role") == "sweep")
    children = {r.data.tags["hamtune_trial_id"]: r for r in runs if r.data.tags.get("mlflow.parentRunId")}
    assert sorted(children) == sorted(trials["trial_id"]) and len(children) == 4  # the search trial, 2 seeds, the ensemble
    for row in trials[trials["stage"] == "confirm"].itertuples():
        run = children[row.trial_id]
        assert run.info.status == "FINISHED" and run.data.params["seed"] == str(int(row.seed))
        history = sorted(client.get_metric_history(run.info.run_id, "val_auroc"), key=lambda m: (m.step, m.timestamp))
        mine = epochs[epochs["trial_id"] == row.trial_id].sort_values("epoch")
        assert [(m.step, m.value) for m in history] == [(e, pytest.approx(v)) for e, v in zip(mine["epoch"], mine["val_auroc"])]
        assert len(mine) == 2 and run.data.metrics["best_val_auroc"] == pytest.approx(row.val_auroc)
    delivered = children[chosen.trial_id]
    assert delivered.data.tags["hamtune.delivered"] == "true" and delivered.info.status == "FINISHED"
    assert [t for t, r in children.items() if r.data.tags.get("hamtune.delivered") == "true"] == [chosen.trial_id]
    assert delivered.data.params["members"] == ",".join(chosen.members) and delivered.data.params["lr"] == str(chosen.config["lr"])
    assert delivered.data.metrics["best_val_auroc"] == pytest.approx(chosen.metrics["val_auroc"])
    assert not {"val_fraction", "test_fraction"} & {k for r in runs for k in r.data.metrics}  # configuration: parameters only

    study = optuna.load_study(study_name="fused", storage=study_url(directory))
    wandb_sweep = next(r for r in _wandb_runs(directory).values() if r["run"].job_type == "sweep")
    assert (
        parent.data.tags["hamtune.chosen_trial_id"]
        == wandb_sweep["summary"]["chosen_trial_id"]
        == study.user_attrs["chosen_trial_id"]
        == chosen.trial_id
    )
    assert (
        parent.data.metrics["best_val_auroc"]
        == pytest.approx(wandb_sweep["summary"]["best_val_auroc"])
        == pytest.approx(study.user_attrs["chosen_metrics"]["val_auroc"])
        == pytest.approx(chosen.metrics["val_auroc"])
    )
    assert study.user_attrs["chosen_rule"] == chosen.rule and study.user_attrs["chosen_in_study"] is False  # the study holds searches
    assert study.metric_names == ["val_auroc"] and len(study.trials) == 1
    assert (directory / "tensorboard" / f"delivered-{chosen.trial_id}").is_dir()

    images = sorted(release_dir.glob("HAM10000_images_part_*/*.jpg"))[:2]
    model = pyfunc.load_model(f"runs:/{delivered.info.run_id}/model")
    assert [c.name for c in model.metadata.get_input_schema().inputs] == ["image"]
    served = model.predict(pd.DataFrame({"image": [p.read_bytes() for p in images]}))
    scored = hamtune.score(hamtune.export_model(directory, tmp_path / "chosen", trial=chosen.trial_id), *images).set_index("image")
    np.testing.assert_allclose(served["score"], scored.loc[[str(p) for p in images], "score"], rtol=0, atol=1e-6)
    assert list(served["flagged"]) == list(scored.loc[[str(p) for p in images], "flagged"])

    # and every place that names the best model on the report side: leaderboard rank 1, the summary, the side-by-side
    # table, the methods card and Results.best (one answer, read from chosen.json)
    from hamtune.report.command import run_report
    from hamtune.report.methods import methods_card

    assert str(hamtune.rank(directory, metric="test_auroc").iloc[0]["trial_id"]) == chosen.trial_id
    assert hamtune.open_results(directory).best.trial_id == chosen.trial_id
    shown: list[str] = []
    html = run_report([directory], quiet=True, show=shown.append)
    assert chosen.trial_id in shown[0]
    page = html.read_text()

    def section(anchor: str) -> str:
        start = page.index(f'<section id="{anchor}">')
        return page[start : page.index("</section>", start)]

    assert chosen.trial_id in section("summary")
    if '<section id="sweeps">' in page:
        assert chosen.trial_id in section("sweeps")
    assert chosen.trial_id in methods_card(directory, "methods")


def test_wandb_offline_groups_a_sweep_run_its_trial_runs_and_a_report_run(prepared, ray_local, tmp_path, monkeypatch):
    pytest.importorskip("wandb", reason='the optional extra: pip install "hamtune[wandb]"')
    from hamtune.api import after_sweep
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_PROJECT", "hamtune-test")
    space = tiny_space(prepared, tmp_path / "wb.yaml", name="wb", num_samples=2)
    directory = run_sweep(space, SweepOptions(results_root=tmp_path, log_to=("wandb",)))
    after_sweep(directory, "wb", ("wandb",), floor=space.floor)
    trials, epochs, _ = load_results(directory)

    runs = {run["run"].display_name: run for run in _wandb_runs(directory).values()}
    by_job = {}
    for name, run in runs.items():
        assert run["run"].run_group == "wb" and run["exit"], f"{name}: not in the sweep's group, or never finished"
        by_job.setdefault(run["run"].job_type, []).append(run)
    assert {job: len(found) for job, found in by_job.items()} == {"sweep": 1, "trial": 2, "report": 1}
    assert {"space", "results"} <= by_job["sweep"][0]["artifacts"] and by_job["report"][0]["artifacts"] == {"report"}
    assert by_job["sweep"][0]["config"]["space.num_samples"] == 2
    assert by_job["sweep"][0]["summary"]["chosen_trial_id"] == chosen_of(directory).trial_id  # reopened when the sweep is over
    for run in by_job["trial"]:
        trial_id = run["run"].display_name.split("-")[0]
        row = trials.set_index("trial_id").loc[trial_id]
        assert {"weight_decay", "image_size", "seed", "kind", "lr", "stage"} <= set(run["config"])  # the full config
        assert run["summary"]["best_val_auroc"] == pytest.approx(row["val_auroc"]) and run["summary"]["status"] == row["status"]
        assert run["exit"] == [0] and not [k for k in run["summary"] if k.startswith("config/") or k in ("pid", "done", "val_fraction")]
        mine = epochs[epochs["trial_id"] == trial_id].sort_values("epoch")
        logged = [h["val_auroc"] for h in run["history"] if "val_auroc" in h]
        assert logged == pytest.approx(list(mine["val_auroc"]))


def _wandb_runs(directory) -> dict:
    """Each W&B run written offline under results/<name>/wandb/, by run id (a run reopened later, such as the sweep
    run naming the chosen model, has one file per opening): its run record, exit codes, config, summary, history and
    artifact types."""
    runs = {}
    for path in sorted((directory / "wandb").glob("offline-run-*/run-*.wandb")):
        records = list(_wandb_records(path))
        assert records, f"{path}: an empty run file"
        run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
        found = runs.setdefault(run.run_id, {"run": run, "exit": [], "config": {}, "summary": {}, "history": [], "artifacts": set()})
        found["exit"] += [r.exit.exit_code for r in records if r.WhichOneof("record_type") == "exit"]
        found["config"].update(
            _items(
                i
                for r in records
                for i in (
                    r.config.update
                    if r.WhichOneof("record_type") == "config"
                    else r.run.config.update
                    if r.WhichOneof("record_type") == "run"
                    else ()
                )
            )
        )
        found["summary"].update(_items(i for r in records if r.WhichOneof("record_type") == "summary" for i in r.summary.update))
        found["history"] += [_items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
        found["artifacts"] |= {r.artifact.type for r in records if r.WhichOneof("record_type") == "artifact"}
    return runs


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
        length, kind = struct.unpack("<HB", data[at + 4 : at + 7])
        pending += data[at + 7 : at + 7 + length]
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
        (length,) = struct.unpack("<Q", data[at : at + 8])
        event = event_pb2.Event()
        event.ParseFromString(data[at + 12 : at + 12 + length])
        yield event
        at += 12 + length + 4


@pytest.mark.parametrize(("tracker", "extra"), [("mlflow", "hamtune[mlflow]"), ("wandb", "hamtune[wandb]")])
def test_a_tracker_without_its_extra_is_a_one_line_error_naming_the_install(prepared, tmp_path, monkeypatch, tracker, extra):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    monkeypatch.setitem(sys.modules, tracker, None)  # what a machine without the extra sees: ImportError
    space = tiny_space(prepared, tmp_path / "t.yaml", name="t", log_to=[tracker])
    with pytest.raises(HamtuneError, match="^" + re.escape(f'--log-to {tracker} needs its package: pip install "{extra}"') + "$"):
        run_sweep(space, SweepOptions(results_root=tmp_path))
    assert not (tmp_path / "t" / "trials.parquet").exists()


def test_an_unknown_tracker_in_a_space_names_the_file_and_key(prepared, tmp_path):
    with pytest.raises(HamtuneError, match=r"t.yaml: log_to: must be one or a list of mlflow, wandb, tensorboard"):
        tiny_space(prepared, tmp_path / "t.yaml", log_to=["neptune"])
