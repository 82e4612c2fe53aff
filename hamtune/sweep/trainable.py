"""The Ray Tune trainable: a thin wrapper that reports hamtune's own training loop to Tune each epoch."""

from __future__ import annotations

import math
import tempfile

import ray
from ray import tune

from hamtune.data.prepare import Prepared
from hamtune.errors import HamtuneError
from hamtune.results.store import DEFAULT_OBJECTIVE, best_epoch, delivered_epoch
from hamtune.sweep.confirm import split_config
from hamtune.sweep.repair import is_complete
from hamtune.sweep.space import OBJECTIVE_METRICS, tune_metric
from hamtune.train.config import TrainConfig, build_config
from hamtune.train.loop import Run, device_name, train


def assigned_cpus() -> int:
    """Torch threads for this trial: the CPUs Ray gave it (never the whole machine per trial)."""
    resources = ray.get_runtime_context().get_assigned_resources()
    return max(1, int(resources.get("CPU", 1)))


def trial_config(values: dict, data_manifest: dict) -> TrainConfig:
    """The config a trial runs: sampled values over any preset, at the prepared data's own preprocessing
    (a confirm trial's marker is not a TrainConfig value)."""
    return build_config(split_config(values)[0], where="trial config").at_preprocessing(data_manifest)


def delivered(history: list[dict], objectives: tuple[tuple[str, str], ...]) -> dict:
    """Every objective's value at the epoch the first objective selects."""
    best = best_epoch(history, *objectives[0])
    return {tune_metric(m): best.get(m, math.nan) for m, _ in objectives}


def run_trial(
    config: dict, data: Prepared, test_data: Prepared | None = None, objectives: tuple[tuple[str, str], ...] = (DEFAULT_OBJECTIVE,)
) -> None:
    """Train one sampled config; every epoch reports metrics and a checkpoint, so ASHA can stop the
    trial and a crashed trial resumes from its last epoch. A config that cannot run, a diverging
    loss or exhausted memory ends with a final report whose `status` says so. `config` is Tune's
    (the sampled values as plain data); trial_config turns it into the TrainConfig that trains."""
    node = ray.get_runtime_context().get_node_id()

    def on_epoch(metrics: dict, run: Run) -> None:
        where = {"node_id": node, "device": device_name(run.device), "n_params": sum(p.numel() for p in run.model.parameters())}
        with tempfile.TemporaryDirectory(prefix="hamtune-ckpt-") as directory:
            run.save(directory)
            report = {**metrics, **delivered(run.history, objectives), **where}
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))

    try:
        cfg = trial_config(config, data.manifest).replace(num_threads=assigned_cpus())
        checkpoint = tune.get_checkpoint()
        selection = objectives[0]
        if checkpoint is None or not is_complete(checkpoint):
            result = train(cfg, data, on_epoch=on_epoch, test_data=test_data, selection=selection)
        else:
            with checkpoint.as_directory() as resume_from:
                result = train(cfg, data, on_epoch=on_epoch, test_data=test_data, resume_from=resume_from, selection=selection)
    except HamtuneError as exc:  # a config that cannot run here fails at once: retrying would not help
        tune.report(_final([], objectives, "failed", str(exc), node))
        return
    if result.status != "completed":
        tune.report(_final(result.history, objectives, result.status, result.reason, node))


def _final(history: list[dict], objectives, status: str, reason: str, node: str) -> dict:
    """A closing report for a run that did not complete: its delivered model's metrics, NaN for every metric a
    space may optimise that it lacks (so the searcher always finds its objective)."""
    metrics = {key: math.nan for key in OBJECTIVE_METRICS}
    metrics.update(delivered_epoch(history, *objectives[0]))
    metrics.update(delivered(history, objectives))
    metrics.update(status=status, reason=reason, node_id=node)
    return metrics
