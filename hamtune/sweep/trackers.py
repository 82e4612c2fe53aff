"""Experiment trackers (`--log-to`, `log_to:` in a space), laid out so a tracker's UI compares trials, and each
names the one chosen model (results/chosen.py's `chosen_of`) the report and the Optuna study name.

Names: every epoch's metrics under their plain names (step = epoch); the model a trial delivers (the checkpoint
of its best validation epoch, its results row) as `best_<metric>` (and `best_threshold`), beside `best_epoch`,
`epochs_run`, `wall_time_s` and `n_params`: never a second point in an epoch series. Configuration fields
(val_fraction, test_fraction, ...) are parameters only, never metrics. Nothing of Tune's bookkeeping
(config/*, done, pid, ...) is logged.

MLflow: one parent run per sweep (the sweep's settings as params, space.yaml and sweep.json as artifacts;
the results files, the report and the chosen bundle at the end) and one child run per trial (its FULL
resolved config as params, a `status` tag: running, then completed / stopped / diverged / failed as its
results row says). When the sweep is over (`log_delivered`), the parent is tagged `hamtune.chosen_trial_id`
(and the rule) and carries the chosen model's metrics as `best_*`; the chosen model's child run (a new one for
a seed ensemble, which no Tune trial trained) is tagged `hamtune.delivered=true` and holds the delivered bundle
as an MLflow Model (pyfunc with a signature: export/mlflow_model.py). A resumed sweep reuses its runs.

TensorBoard: event files under results/<name>/tensorboard/<trial id>-<sampled values>/ (the epoch series, the
delivered numbers as best_* with the trial's hparams, for the HParams view), and one run
delivered-<chosen id>/ for the chosen model. Tune's own event files are off (tune/runner.py: tune_loggers), so
`tensorboard --logdir results/<name>` shows each trial once.

W&B: the same layout in the sweep's group (WandbTracker: a `sweep` run whose summary, when the sweep is over,
holds the chosen id, rule and metrics; a `trial` run per trial; a `report` run with the report and the chosen
bundle), written under results/<name>/wandb/.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hamtune.config_fields import FIELDS
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.sweep.confirm import group_seeds, member_id, split_config, trial_config
from hamtune.sweep.internals import open_mlflow_store
from hamtune.sweep.space import TRACKERS

log = logging.getLogger(__name__)

EPOCH_PREFIXES = ("val_", "test_")
EPOCH_KEYS = ("train_loss", "epoch_time_s", "train_images_per_s")
RUN_NUMBERS = ("best_epoch", "epochs_run", "wall_time_s", "n_params")  # one number per run: no epoch series of that name
PARENT_TAG, TRIAL_TAG = "hamtune_sweep", "hamtune_trial_id"
DELIVERED_TAG, CHOSEN_TAG, RULE_TAG = "hamtune.delivered", "hamtune.chosen_trial_id", "hamtune.chosen_rule"
SWEEP_SETTINGS = ("space", "command", "versions", "git_commit", "hardware")


def require(name: str) -> None:
    """The tracker's package is installed, or a one-line error naming the install command."""
    if name not in TRACKERS:
        raise UsageError(f"--log-to {name}: unknown tracker; choose from {', '.join(TRACKERS)}")
    backend = BACKENDS[name]
    try:
        __import__(backend.module)
    except ImportError:
        raise HamtuneError(f'--log-to {name} needs its package: pip install "{backend.extra}"') from None
    if name == "mlflow":
        check_mlflow(os.environ.get("MLFLOW_TRACKING_URI"))


CONNECT_TIMEOUT_S = 5.0  # a tracking server that does not answer in this long is down: the sweep is refused, not retried


def check_reachable(uri: str, what: str, advice: str = "") -> None:
    """An http(s) tracking server answers one plain GET within CONNECT_TIMEOUT_S (any HTTP status counts: it is up),
    checked before Ray starts: MLflow's client otherwise retries a refused connection for minutes before any trial."""
    import urllib.error
    import urllib.request

    if not uri.lower().startswith(("http://", "https://")):
        return
    try:
        with urllib.request.urlopen(urllib.request.Request(uri, method="GET"), timeout=CONNECT_TIMEOUT_S):
            pass
    except urllib.error.HTTPError:
        return  # it answered
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise HamtuneError(
            f"{what}={uri}: no answer within {CONNECT_TIMEOUT_S:g} s ({first_line(reason, 120)}); start the "
            f"server or fix the address{' ' + advice if advice else ''} (nothing was run)"
        ) from None


def check_mlflow(uri: str | None) -> None:
    """Open MLflow's tracking store now, so a store it refuses (MLflow 3 refuses the file store: file:// and
    plain paths) is one line before the sweep starts, not a traceback from inside Tune."""
    import mlflow

    check_reachable(uri or "", "--log-to mlflow: MLFLOW_TRACKING_URI", "or set MLFLOW_TRACKING_URI=sqlite:///mlflow.db")
    try:
        open_mlflow_store(uri)
    except Exception as exc:
        raise HamtuneError(
            f"--log-to mlflow: MLflow {mlflow.__version__} refuses MLFLOW_TRACKING_URI={uri or '(unset: ./mlruns)'} "
            f"({first_line(exc, 140)}); set MLFLOW_TRACKING_URI=sqlite:///mlflow.db or an http:// server"
        ) from None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def epoch_metrics(result: dict) -> dict[str, float]:
    """What a trial reports each epoch, without Tune's bookkeeping or configuration fields."""
    return {k: float(v) for k, v in result.items() if (k.startswith(EPOCH_PREFIXES) or k in EPOCH_KEYS) and k not in FIELDS and _finite(v)}


def results_row(directory: Path, trial_id: str) -> dict:
    """A trial's results row (the recorder writes it before the trackers run), {} when it is not there."""
    from hamtune.results.layout import TRIALS
    from hamtune.results.store import read_parquet

    path = Path(directory) / TRIALS
    if not path.exists():
        return {}
    trials = read_parquet(path)
    rows = trials[trials["trial_id"] == trial_id]
    return rows.iloc[-1].to_dict() if len(rows) else {}


def delivered_metrics(row: dict) -> dict[str, float]:
    """The delivered model's numbers (a results row, or a chosen model's metrics), named apart from the epoch
    series: best_<metric> for its validation and test metrics and threshold, plain names for RUN_NUMBERS."""
    out = {}
    for key, value in row.items():
        if key in FIELDS or not _finite(value):  # parameters, never metrics (val_fraction looks like a validation metric)
            continue
        if key.startswith(EPOCH_PREFIXES) or key == "threshold":
            out[f"best_{key}"] = float(value)
        elif key in RUN_NUMBERS:
            out[key] = float(value)
    return out


def trial_params(config: dict, manifest: dict) -> dict:
    """The trial's full resolved TrainConfig (every field, preprocessing at the data's), plus its configuration id."""
    values, confirms = split_config(config)
    try:
        params = trial_config(values, manifest).to_dict()
    except HamtuneError:
        params = dict(values)
    return {**params, "stage": "confirm" if confirms else "search", "config_id": confirms or ""}


def models(trial_id: str, config: dict) -> list[tuple[str, int | None]]:
    """(results row id, seed) of each model a Tune trial trains: itself, or each seed of a fused group."""
    seeds = group_seeds(config)
    return [(trial_id, None)] if not seeds else [(member_id(trial_id, seed), seed) for seed in seeds]


def short_name(trial_id: str, config: dict, sampled: tuple[str, ...]) -> str:
    """trial id + the few values the space searched, e.g. 'a1b2c3d4-kind=ae-arch=cnn-lr=0.002'."""
    parts = [trial_id] + [f"{k}={config[k]:.3g}" if isinstance(config[k], float) else f"{k}={config[k]}" for k in sampled if k in config]
    return "-".join(parts)[:100]


class TrialTracker:
    """The events every tracker here logs, from a sweep's trials (`trial_started`, `trial_reported`, `trial_ended`:
    a Tune trial's id, config and results, which sweep/tune/trackers.py hands over); each backend says how (setup,
    start, epoch, end, finish)."""

    def __init__(self, directory: Path, sweep: str, manifest: dict, sampled: tuple[str, ...], settings: dict):
        self.directory, self.sweep, self.manifest, self.sampled = Path(directory), sweep, manifest, sampled
        self.settings = settings  # the sweep's record (sweep.json), for a sweep-level run

    def trial_started(self, trial_id: str, config: dict) -> None:
        params = trial_params(config, self.manifest)
        for model_id, seed in models(trial_id, config):  # a fused trial's seeds are one tracked run each, as alone
            values = config if seed is None else {**config, "seed": seed}
            self.start_trial(model_id, params if seed is None else {**params, "seed": seed}, short_name(model_id, values, self.sampled))

    def trial_reported(self, trial_id: str, result: dict) -> None:
        members = result.get("members")
        each = (
            [(trial_id, result)]
            if not isinstance(members, dict)
            else [(member_id(trial_id, int(seed)), metrics) for seed, metrics in members.items()]
        )
        for model_id, values in each:
            metrics = epoch_metrics(values)
            if metrics and isinstance(values.get("epoch"), int):
                self.log_epoch(model_id, values["epoch"], metrics)

    def trial_ended(self, trial_id: str, config: dict) -> None:
        """Completed or errored: each model's run ends as the recorder's row says (written before the trackers run)."""
        for model_id, _ in models(trial_id, config):
            row = results_row(self.directory, model_id)
            self.end_trial(model_id, str(row.get("status") or "failed"), int(row.get("epochs_run") or 0), row)

    def setup(self) -> None:
        """Before the first trial (a sweep-level run)."""

    def finish(self) -> None:
        """When the sweep's trials are over."""

    def start_trial(self, trial_id: str, params: dict, name: str) -> None:
        raise NotImplementedError

    def log_epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        raise NotImplementedError

    def end_trial(self, trial_id: str, status: str, epochs: int, row: dict) -> None:
        raise NotImplementedError


class MLflowTracker(TrialTracker):
    """A parent run per sweep, a child run per trial (see the module docstring)."""

    def __init__(self, directory: Path, sweep: str, manifest: dict, sampled: tuple[str, ...], settings: dict):
        super().__init__(directory, sweep, manifest, sampled, settings)
        self.runs: dict[str, str] = {}  # trial id -> its MLflow run id
        self.parent: Any = None  # the sweep's MLflow run, from setup

    def setup(self) -> None:
        self.parent = parent_run(self.sweep, self.directory, self.settings)

    def _client(self):
        from mlflow.tracking import MlflowClient

        return MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"))

    def start_trial(self, trial_id: str, params: dict, name: str) -> None:
        client = self._client()
        existing = client.search_runs([self.parent.info.experiment_id], filter_string=f"tags.{TRIAL_TAG} = '{trial_id}'")
        if existing:
            self.runs[trial_id] = existing[0].info.run_id
            return
        run = client.create_run(
            self.parent.info.experiment_id,
            run_name=name,
            tags={"mlflow.parentRunId": self.parent.info.run_id, PARENT_TAG: self.sweep, TRIAL_TAG: trial_id, "status": "running"},
        )
        self.runs[trial_id] = run.info.run_id
        _log_params(client, run.info.run_id, params)

    def log_epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        from mlflow.entities import Metric

        run_id = self.runs.get(trial_id)
        if run_id:
            stamp = _now_ms()
            self._client().log_batch(run_id, metrics=[Metric(k, v, stamp, epoch) for k, v in metrics.items()])

    def end_trial(self, trial_id: str, status: str, epochs: int, row: dict) -> None:
        from mlflow.entities import Metric

        run_id = self.runs.get(trial_id)
        if not run_id:
            return
        client = self._client()
        delivered = delivered_metrics(row)
        if delivered:  # keys of their own (best_*), at the epoch the delivered checkpoint is from
            step = int(row["best_epoch"]) if _finite(row.get("best_epoch")) else epochs
            client.log_batch(run_id, metrics=[Metric(k, v, _now_ms(), step) for k, v in delivered.items()])
        client.set_tag(run_id, "status", status)
        if row.get("reason"):
            client.set_tag(run_id, "reason", str(row["reason"])[:500])
        client.set_terminated(run_id, "FINISHED" if status in ("completed", "stopped") else "FAILED")

    def finish(self) -> None:
        client = self._client()
        for name in ("trials.parquet", "epochs.parquet", "sweep.json", "confirm.json"):
            if (self.directory / name).is_file():
                client.log_artifact(self.parent.info.run_id, str(self.directory / name), "results")
        client.set_terminated(self.parent.info.run_id, "FINISHED")


def parent_run(sweep: str, directory: Path, settings: dict):
    """The sweep's parent run (reused on --resume): its settings as params, space.yaml and sweep.json as artifacts."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"))
    experiment = client.get_experiment_by_name(sweep)
    uri = os.environ.get("MLFLOW_TRACKING_URI") or ""
    local = uri.startswith("sqlite:") or not uri  # no server to hold artifacts: beside the results, not in the working directory
    artifacts = (Path(directory) / "mlartifacts").resolve().as_uri() if local else None
    experiment_id = experiment.experiment_id if experiment else client.create_experiment(sweep, artifact_location=artifacts)
    found = client.search_runs([experiment_id], filter_string=f"tags.{PARENT_TAG} = '{sweep}' and tags.hamtune_role = 'sweep'")
    if found:
        return found[0]
    run = client.create_run(
        experiment_id, run_name=sweep, tags={PARENT_TAG: sweep, "hamtune_role": "sweep", "hamtune_results": str(directory)}
    )
    _log_params(client, run.info.run_id, sweep_params(settings))
    for name in ("sweep.json",):
        if (Path(directory) / name).is_file():
            client.log_artifact(run.info.run_id, str(Path(directory) / name))
    text = settings.get("space_text")
    if isinstance(text, str):
        client.log_text(run.info.run_id, text, "space.yaml")
    return run


def _sweep_run(client, sweep: str):
    """The MLflow parent run of a sweep, or None (with a warning) where there is none."""
    experiment = client.get_experiment_by_name(sweep)
    found = (
        client.search_runs([experiment.experiment_id], filter_string=f"tags.{PARENT_TAG} = '{sweep}' and tags.hamtune_role = 'sweep'")
        if experiment
        else []
    )
    if not found:
        log.warning("no MLflow run of sweep %s to add the chosen model, the report and the bundle to", sweep)
    return found[0] if found else None


def log_artifacts(directory: Path, sweep: str, paths: dict[str, Path]) -> None:
    """Add files to a finished sweep's parent run (the report, the chosen bundle): `paths` maps an artifact folder
    to a file or folder."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"))
    parent = _sweep_run(client, sweep)
    if parent is None:
        return
    for folder, path in paths.items():
        if Path(path).is_dir():
            client.log_artifacts(parent.info.run_id, str(path), folder)
        elif Path(path).is_file():
            client.log_artifact(parent.info.run_id, str(path), folder)


def log_delivered(directory: Path, sweep: str, trackers: tuple[str, ...]) -> str | None:
    """Name the chosen model (chosen_of: the record the report reads) in every tracker of a finished sweep: MLflow's
    parent tag and best_* metrics and a delivered child run; W&B's sweep-run summary; a TensorBoard run. Returns the
    MLflow delivered run's id (where the caller logs the bundle as an MLflow Model), else None. Nothing where the
    folder has no chosen model yet."""
    from hamtune.results.chosen import chosen_of

    chosen = chosen_of(directory)
    if chosen is None:
        log.warning("%s: no chosen model to name in the trackers (no ranked trial)", directory)
        return None
    runs = [BACKENDS[name].delivered(Path(directory), sweep, chosen) for name in trackers]
    return next((run for run in runs if run is not None), None)


def chosen_summary(chosen) -> dict:
    """What a sweep-level record (the W&B sweep summary, the Optuna study's user attrs) says of the chosen model."""
    return {
        "chosen_trial_id": chosen.trial_id,
        "chosen_rule": chosen.rule,
        "chosen_metric": chosen.metric,
        "chosen_kind": chosen.kind or "",
        "chosen_members": list(chosen.members),
    }


def mlflow_delivered(directory: Path, sweep: str, chosen) -> str | None:
    """The parent run tagged with the chosen id and carrying its metrics as best_*; the chosen model's child run
    (created for an ensemble) tagged delivered; any other run once tagged delivered (a resumed sweep that chose
    again) untagged. Returns the delivered run's id, None without a parent run."""
    from mlflow.entities import Metric
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"))
    parent = _sweep_run(client, sweep)
    if parent is None:
        return None
    experiment, parent_id = parent.info.experiment_id, parent.info.run_id
    for run in client.search_runs([experiment], filter_string=f"tags.`{DELIVERED_TAG}` = 'true'"):
        if run.data.tags.get(TRIAL_TAG) != chosen.trial_id:
            client.set_tag(run.info.run_id, DELIVERED_TAG, "false")
    found = client.search_runs([experiment], filter_string=f"tags.{TRIAL_TAG} = '{chosen.trial_id}'")
    if found:
        run_id = found[0].info.run_id
    else:  # a seed ensemble: no Tune trial trained it, so no trial logged it
        run_id = client.create_run(
            experiment,
            run_name=f"{chosen.trial_id}-delivered",
            tags={"mlflow.parentRunId": parent_id, PARENT_TAG: sweep, TRIAL_TAG: chosen.trial_id, "status": "completed"},
        ).info.run_id
        _log_params(
            client,
            run_id,
            {**chosen.config, "delivered_as": chosen.kind or "", "config_id": chosen.config_id or "", "members": ",".join(chosen.members)},
        )
        client.log_batch(run_id, metrics=[Metric(k, v, _now_ms(), 0) for k, v in delivered_metrics(chosen.metrics).items()])
    for run in (run_id, parent_id):
        client.set_tag(run, RULE_TAG, chosen.rule)
    client.set_tag(run_id, DELIVERED_TAG, "true")
    client.set_tag(parent_id, CHOSEN_TAG, chosen.trial_id)
    client.log_batch(parent_id, metrics=[Metric(k, v, _now_ms(), 0) for k, v in delivered_metrics(chosen.metrics).items()])
    client.set_terminated(run_id, "FINISHED")
    return run_id


def sweep_params(settings: dict) -> dict:
    """What a sweep's parent run (MLflow) or sweep run (W&B) holds as parameters: sweep.json's settings, flattened."""
    return _flatten({k: settings[k] for k in SWEEP_SETTINGS if k in settings})


def _flatten(settings: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in settings.items():
        if key == "space_text":
            continue
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(_flatten(value, f"{name}."))
        else:
            out[name] = json.dumps(value, default=str) if isinstance(value, (list, dict)) else value
    return out


def _log_params(client, run_id: str, params: dict) -> None:
    from mlflow.entities import Param

    items = [Param(str(k)[:250], "None" if v is None else str(v)[:6000]) for k, v in params.items()]
    for start in range(0, len(items), 100):  # MLflow takes at most 100 params per batch
        client.log_batch(run_id, params=items[start : start + 100])


def _now_ms() -> int:
    import time

    return int(time.time() * 1000)


class TensorBoardTracker(TrialTracker):
    """Event files per trial under results/<name>/tensorboard/, short run names, the delivered metrics as best_*."""

    def __init__(self, directory: Path, sweep: str, manifest: dict, sampled: tuple[str, ...], settings: dict):
        super().__init__(directory, sweep, manifest, sampled, settings)
        self.writers: dict = {}
        self.params: dict = {}

    def start_trial(self, trial_id: str, params: dict, name: str) -> None:
        from tensorboardX import SummaryWriter

        self.writers[trial_id] = SummaryWriter(str(self.directory / "tensorboard" / name))
        self.params[trial_id] = {k: v for k, v in params.items() if isinstance(v, (int, float, str, bool))}

    def log_epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        writer = self.writers.get(trial_id)
        if writer is not None:
            for key, value in metrics.items():
                writer.add_scalar(key, value, epoch)

    def end_trial(self, trial_id: str, status: str, epochs: int, row: dict) -> None:
        writer = self.writers.pop(trial_id, None)
        if writer is None:
            return
        writer.add_hparams({**self.params.pop(trial_id, {}), "status": status}, delivered_metrics(row), name=".")  # as scalars too
        writer.close()


class WandbTracker(TrialTracker):
    """W&B laid out as MLflow is: in the sweep's group, one `sweep` run (the settings as config, space.yaml and
    sweep.json as an artifact, the results files at the end) and one `trial` run per trial (the full config,
    every epoch at step = epoch, the delivered model's metrics and status as the run's summary). Runs live in
    this process and are finished here, so none is left half-written at exit (Tune's own callback finished
    its last run from `__del__`: an empty run file, issue 26). Files go to results/<name>/wandb/."""

    def __init__(self, directory: Path, sweep: str, manifest: dict, sampled: tuple[str, ...], settings: dict):
        super().__init__(directory, sweep, manifest, sampled, settings)
        self.runs: dict[str, Any] = {}  # trial id -> its open W&B run
        self.parent: Any = None  # the sweep's W&B run, from setup

    def setup(self) -> None:
        self.parent = wandb_run(
            self.directory, self.sweep, "sweep", self.sweep, sweep_params(self.settings), run_id=sweep_run_id(self.sweep)
        )
        files = {"sweep.json": self.directory / "sweep.json"}
        text = self.settings.get("space_text")
        if isinstance(text, str):
            (self.directory / "wandb").mkdir(exist_ok=True)
            files["space.yaml"] = self.directory / "wandb" / "space.yaml"
            files["space.yaml"].write_text(text)
        _wandb_artifact(self.parent, "space", "space", files)

    def start_trial(self, trial_id: str, params: dict, name: str) -> None:
        if trial_id not in self.runs:
            self.runs[trial_id] = wandb_run(self.directory, self.sweep, "trial", name, params, run_id=f"{self.sweep}-{trial_id}")

    def log_epoch(self, trial_id: str, epoch: int, metrics: dict[str, float]) -> None:
        run = self.runs.get(trial_id)
        if run is not None:
            run.log(metrics, step=epoch, commit=True)  # written now: an uncommitted step would land after the summary

    def end_trial(self, trial_id: str, status: str, epochs: int, row: dict) -> None:
        run = self.runs.pop(trial_id, None)
        if run is None:
            return
        run.summary.update({**delivered_metrics(row), "status": status})
        run.tags = (*run.tags, status)
        run.finish(exit_code=0 if status in ("completed", "stopped") else 1)

    def finish(self) -> None:
        for trial_id in list(self.runs):  # trials Tune never ended (an interrupted sweep): finished, not left open
            self.runs.pop(trial_id).finish(exit_code=1)
        if self.parent is not None:
            _wandb_artifact(
                self.parent, "results", "results", {n: self.directory / n for n in ("trials.parquet", "epochs.parquet", "confirm.json")}
            )
            self.parent.finish()
            self.parent = None


def sweep_run_id(sweep: str) -> str:
    """The W&B id of a sweep's `sweep` run, so the run is reopened (resume) to name the chosen model at the end."""
    return f"{sweep}-sweep"


def wandb_delivered(directory: Path, sweep: str, chosen) -> None:
    """The sweep run's summary: the chosen id, rule and metrics (as best_*)."""
    run = wandb_run(directory, sweep, "sweep", sweep, {}, run_id=sweep_run_id(sweep))
    try:
        run.summary.update({**chosen_summary(chosen), **delivered_metrics(chosen.metrics)})
    finally:
        run.finish()


def tensorboard_delivered(directory: Path, sweep: str, chosen) -> None:
    """A run delivered-<id>/ beside the trials': the chosen model's configuration and rule as hparams, its metrics as best_*."""
    from tensorboardX import SummaryWriter

    params = {k: v for k, v in chosen.config.items() if isinstance(v, (int, float, str, bool))}
    params.update(trial_id=chosen.trial_id, rule=chosen.rule, kind=chosen.kind or "", members=",".join(chosen.members))
    writer = SummaryWriter(str(Path(directory) / "tensorboard" / f"delivered-{chosen.trial_id}"[:100]))
    try:
        writer.add_hparams(params, delivered_metrics(chosen.metrics), name=".")
    finally:
        writer.close()


def wandb_run(directory: Path, sweep: str, job: str, name: str, config: dict, run_id: str | None = None):
    """A W&B run of the sweep's group, kept off the terminal (runs of one sweep live side by side in this process)."""
    import wandb

    (Path(directory) / "wandb").mkdir(parents=True, exist_ok=True)
    safe = re.sub(r"[^A-Za-z0-9_-]", "-", run_id)[:120] if run_id else None
    return wandb.init(
        project=os.environ.get("WANDB_PROJECT", "hamtune"),
        group=sweep,
        job_type=job,
        name=name,
        config=config,
        id=safe,
        resume="allow" if safe else None,
        dir=str(directory),
        reinit="create_new",
        settings=wandb.Settings(console="off", silent=True),
    )


def _wandb_artifact(run, name: str, kind: str, files: dict[str, Path]) -> None:
    import wandb

    present = {n: p for n, p in files.items() if Path(p).exists()}
    if not present:
        return
    artifact = wandb.Artifact(re.sub(r"[^A-Za-z0-9_.-]", "-", f"{run.group}-{name}"), type=kind)
    for entry, path in present.items():  # file by file: add_dir writes to the terminal
        inside = sorted(p for p in Path(path).rglob("*") if p.is_file()) if Path(path).is_dir() else [Path(path)]
        for file in inside:
            artifact.add_file(str(file), name=entry if file == Path(path) else f"{entry}/{file.relative_to(path).as_posix()}")
    run.log_artifact(artifact)


def log_wandb_artifacts(directory: Path, sweep: str, paths: dict[str, Path]) -> None:
    """The report and the chosen bundle of a finished sweep, as a `report` run of its W&B group."""
    run = wandb_run(directory, sweep, "report", f"{sweep}-report", {})
    try:
        _wandb_artifact(run, "report", "report", paths)
    finally:
        run.finish()


@dataclass(frozen=True)
class Backend:
    """One experiment tracker `--log-to` names: the package it needs and the install that brings it, the tracker that
    logs a sweep's trials, and how it names the chosen model once the sweep is over (MLflow returns the run the
    bundle is logged to as an MLflow Model)."""

    module: str
    extra: str
    tracker: type[TrialTracker]
    delivered: Callable[[Path, str, Any], str | None]


BACKENDS: dict[str, Backend] = {  # one entry per name in space.TRACKERS (tests/unit/sweep/test_tracker_registry.py)
    "mlflow": Backend("mlflow", "hamtune[mlflow]", MLflowTracker, mlflow_delivered),
    "wandb": Backend("wandb", "hamtune[wandb]", WandbTracker, wandb_delivered),
    "tensorboard": Backend("tensorboardX", "tensorboardX", TensorBoardTracker, tensorboard_delivered),
}


def make_trackers(
    names: tuple[str, ...],
    directory: Path,
    sweep: str,
    manifest: dict | None = None,
    sampled: tuple[str, ...] = (),
    settings: dict | None = None,
) -> list[TrialTracker]:
    """The trackers `names` (each checked with `require` first, before anything is loaded); `settings` (the sweep's
    record, sweep.json) go to MLflow's parent run. sweep/tune/trackers.py hands them Tune's trial events."""
    return [BACKENDS[name].tracker(directory, sweep, manifest or {}, sampled, settings or {}) for name in names]
