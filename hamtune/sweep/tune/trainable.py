"""The Ray Tune trainable: a thin wrapper that reports hamtune's own training loop to Tune each epoch."""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import ray
from ray import tune

from hamtune.data.prepare import Prepared
from hamtune.errors import HamtuneError
from hamtune.results.layout import DEFAULT_OBJECTIVE
from hamtune.results.store import best_epoch, delivered_epoch
from hamtune.sweep.confirm import group_seeds, trial_config
from hamtune.sweep.space import OBJECTIVE_METRICS, tune_metric
from hamtune.sweep.tune.repair import is_complete
from hamtune.train.fused import Member, save_group, train_group
from hamtune.train.loop import Run, device_name, train


def assigned_cpus() -> int:
    """Torch threads for this trial: the CPUs Ray gave it (never the whole machine per trial)."""
    resources = ray.get_runtime_context().get_assigned_resources()
    return max(1, int(resources.get("CPU", 1)))


@contextmanager
def resume_folder() -> Iterator[Path | None]:
    """The trial's last complete checkpoint as a local folder to resume from, or None: start afresh."""
    checkpoint = tune.get_checkpoint()
    if checkpoint is None or not is_complete(checkpoint):
        yield None
        return
    with checkpoint.as_directory() as directory:
        yield Path(directory)


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
    logging.getLogger("ray.train").setLevel(logging.WARNING)  # a line per checkpoint: noise in a cluster driver's log
    node = ray.get_runtime_context().get_node_id()
    seeds = group_seeds(config)
    if seeds:
        run_group_trial(config, seeds, data, test_data, objectives, node)
        return

    def on_epoch(metrics: dict, run: Run) -> None:
        where = {"node_id": node, "device": device_name(run.device), "n_params": sum(p.numel() for p in run.model.parameters())}
        with tempfile.TemporaryDirectory(prefix="hamtune-ckpt-") as directory:
            run.save(Path(directory))
            report = {**metrics, **delivered(run.history, objectives), **where}
            tune.report(report, checkpoint=tune.Checkpoint.from_directory(directory))

    try:
        cfg = trial_config(config, data.manifest).replace(num_threads=assigned_cpus())
        with resume_folder() as resume_from:
            result = train(cfg, data, on_epoch=on_epoch, test_data=test_data, resume_from=resume_from, selection=objectives[0])
    except HamtuneError as exc:  # a config that cannot run here fails at once: retrying would not help
        tune.report(_final([], objectives, "failed", str(exc), node))
        return
    if result.status != "completed":
        tune.report(_final(result.history, objectives, result.status, result.reason, node))


def run_group_trial(
    config: dict, seeds: list[int], data: Prepared, test_data: Prepared | None, objectives: tuple[tuple[str, str], ...], node: str
) -> None:
    """A fused confirm trial: the seeds of one configuration trained as one grouped model (train/fused.py).
    Each group epoch reports the members' mean delivered objective (what Tune sees), each member's epoch
    under `members` (what the trackers log per seed) and a checkpoint of every member (`save_group`)."""

    def on_group_epoch(members: list[Member]) -> None:
        with tempfile.TemporaryDirectory(prefix="hamtune-ckpt-") as directory:
            save_group(members, Path(directory))
            tune.report(group_report(members, objectives, node), checkpoint=tune.Checkpoint.from_directory(directory))

    try:
        first = trial_config(config, data.manifest).replace(num_threads=assigned_cpus())
        configs = [first.replace(seed=seed) for seed in seeds]
        with resume_folder() as resume_from:
            results = train_group(
                configs, data, test_data=test_data, selection=objectives[0], on_group_epoch=on_group_epoch, resume_from=resume_from
            )
    except HamtuneError as exc:
        tune.report(_final([], objectives, "failed", str(exc), node))
        return
    if any(r.status != "completed" for r in results):  # the recorder takes each member's state from here
        longest = max(results, key=lambda r: len(r.history))
        report = _final(longest.history, objectives, longest.status, longest.reason, node)
        tune.report({**report, "member_states": [[r.status, r.reason] for r in results]})


def _finite_mean(values: list[float]) -> float:
    finite = [v for v in values if math.isfinite(v)]
    return sum(finite) / len(finite) if finite else math.nan


def group_report(members: list[Member], objectives: tuple[tuple[str, str], ...], node: str) -> dict:
    """One group epoch for Tune: the mean over members of each objective's delivered value, the epoch, and
    `members` = {seed: that member's epoch metrics} for the members that trained in this epoch."""
    epoch = max(m.run.epoch for m in members)
    each = [delivered(m.run.history, objectives) for m in members if m.run.history]
    mean = {key: _finite_mean([d[key] for d in each]) for key in (each[0] if each else {})}
    trained = {
        str(m.run.config.seed): {**m.run.history[-1], **delivered(m.run.history, objectives)}
        for m in members
        if m.run.history and m.run.history[-1].get("epoch") == epoch
    }
    run = members[0].run
    return {
        **mean,
        "epoch": epoch,
        "members": trained,
        "node_id": node,
        "device": device_name(run.device),
        "n_params": sum(p.numel() for p in run.model.parameters()),
    }


def _final(history: list[dict], objectives, status: str, reason: str, node: str) -> dict:
    """A closing report for a run that did not complete: its delivered model's metrics, NaN for every metric a
    space may optimise that it lacks (so the searcher always finds its objective)."""
    metrics: dict[str, object] = {key: math.nan for key in OBJECTIVE_METRICS}
    metrics.update(delivered_epoch(history, *objectives[0]))
    metrics.update(delivered(history, objectives))
    metrics.update(status=status, reason=reason, node_id=node)
    return metrics
