"""A Tune callback in the driver that writes each trial to the results folder the moment it ends."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import numpy as np
import pyarrow.fs as pafs
from ray import tune

from hamtune.errors import HamtuneError
from hamtune.files import atomic_folder
from hamtune.paths import relative_to_results
from hamtune.results.layout import CHECKPOINTS
from hamtune.results.store import ResultsWriter, trial_row
from hamtune.sweep.confirm import group_seeds, member_id, split_config, trial_config
from hamtune.sweep.study import finish_trial
from hamtune.train import checkpoint as ckpt
from hamtune.train.fused import member_folder, read_group

log = logging.getLogger(__name__)


def _error_text(trial) -> str:
    for attribute in ("error_msg",):
        text = getattr(trial, attribute, None)
        if text:
            return str(text)
    path = getattr(trial, "error_file", None)
    if path and Path(path).exists():
        return Path(path).read_text(errors="replace")
    return "the trial raised an error (see the Ray logs)"


def member_states(last: dict, checkpoint: str | None, n: int, status: str, reason: str) -> list[tuple[str, str]]:
    """Each seed's (status, reason) of a fused trial: its closing report's, else its checkpoint's group.json
    (a seed still training there ended as the trial did), else the trial's own."""
    reported = last.get("member_states")
    if isinstance(reported, list) and len(reported) == n:
        return [(str(s), str(r)) for s, r in reported]
    try:
        saved = read_group(Path(checkpoint)) if checkpoint else []
    except HamtuneError as exc:
        log.warning("%s", exc)
        saved = []
    if len(saved) == n:
        return [(status, reason) if m["status"] == "running" else (m["status"], m["reason"]) for m in saved]
    return [(status, reason)] * n


def local_checkpoint(trial, directory: Path) -> str | None:
    """The trial's last checkpoint as a folder on this machine: Tune's own where the storage is a local or shared
    folder; a copy in the results folder's checkpoints/ where it is a bucket (s3://, gs://), so that the row, export,
    score and report read a sweep's models the same way wherever Tune kept them."""
    checkpoint = trial.checkpoint
    if checkpoint is None:
        return None
    if isinstance(checkpoint.filesystem, pafs.LocalFileSystem):
        return checkpoint.path
    target = directory / CHECKPOINTS / trial.trial_id
    try:
        with atomic_folder(target) as tmp:
            checkpoint.to_directory(str(tmp))
    except OSError as exc:
        log.warning("trial %s: could not copy its checkpoint from %s (%s)", trial.trial_id, checkpoint.path, exc)
        return None
    return str(target)


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:500] if lines else text[:500]


class ResultsRecorder(tune.Callback):
    """Turns finished trials into rows of trials/epochs/scores Parquet files and prints a line each."""

    def __init__(
        self,
        directory: Path,
        sweep: str,
        objectives,
        data_manifest: dict,
        test_manifest: dict | None,
        total: int,
        keep_checkpoints: str = "best",
    ):
        self.directory, self.sweep, self.objectives = Path(directory), sweep, tuple(objectives)
        self.keep = keep_checkpoints
        self.data_manifest, self.test_manifest, self.total = data_manifest, test_manifest, total
        self.started: dict[str, float] = {}
        self.opened, self.recorded_here = time.time(), 0

    def on_trial_start(self, iteration, trials, trial, **info) -> None:
        self.started.setdefault(trial.trial_id, time.time())

    def on_trial_complete(self, iteration, trials, trial, **info) -> None:
        last = trial.last_result or {}
        status = last.get("status", "running")
        self._record(trial, "stopped" if status == "running" else status, last.get("reason") or "", trials)

    def on_trial_recover(self, iteration, trials, trial, **info) -> None:
        log.info(
            "trial %s failed (%s); retrying from its last checkpoint (failure %d)",
            trial.trial_id,
            _last_line(_error_text(trial))[:160],
            trial.num_failures,
        )

    def on_trial_error(self, iteration, trials, trial, **info) -> None:
        self._record(trial, "failed", _last_line(_error_text(trial)), trials)

    def _record(self, trial, status: str, reason: str, trials: list) -> None:
        checkpoint = local_checkpoint(trial, self.directory)
        values, confirms = split_config(trial.config)
        seeds = group_seeds(trial.config)
        if not seeds:
            self._write(trial, trial.trial_id, values, confirms, status, reason, checkpoint, trials)
            return
        states = member_states(trial.last_result or {}, checkpoint, len(seeds), status, reason)
        for index, (seed, (state, why)) in enumerate(zip(seeds, states)):
            folder = str(member_folder(Path(checkpoint), index)) if checkpoint else None
            self._write(trial, member_id(trial.trial_id, seed), {**values, "seed": seed}, confirms, state, why, folder, trials)

    def _write(
        self, trial, trial_id: str, values: dict, confirms: str | None, status: str, reason: str, checkpoint: str | None, trials: list
    ) -> None:
        """One model's row (a trial's, or one seed's of a fused trial) from its checkpoint folder."""
        history: list[dict] = []
        scores, samples = None, None
        if checkpoint is not None:
            try:
                history, scores = ckpt.load_history(Path(checkpoint))
                samples = ckpt.load_samples(Path(checkpoint))
            except (HamtuneError, OSError) as exc:
                log.warning("trial %s: could not read its checkpoint %s (%s)", trial_id, checkpoint, exc)
        if status == "stopped" and history and history[-1].get("status") == "completed":
            status = "completed"  # resumed at its last epoch: Tune's last result predates that epoch
        try:
            params = trial_config(values, self.data_manifest).applicable()
        except HamtuneError:
            params = values
        last = trial.last_result or {}
        wall = time.time() - self.started.get(trial.trial_id, time.time())
        row = trial_row(
            sweep=self.sweep,
            trial_id=trial_id,
            status=status,
            reason=reason,
            params=params,
            history=history,
            objective=self.objectives[0],
            wall_time_s=float(last.get("time_total_s", wall)),
            device=str(last.get("device", "")) or None,
            data_manifest=self.data_manifest,
            test_manifest=self.test_manifest,
            n_params=last.get("n_params"),
            checkpoint=relative_to_results(checkpoint, self.directory),
            extra={
                "node_id": last.get("node_id"),
                "objective_metrics": ",".join(m for m, _ in self.objectives),
                "config_id": confirms or trial_id,
                "stage": "confirm" if confirms else "search",
            },
        )
        writer = ResultsWriter(self.directory)
        writer.add(row, history, scores if status != "failed" or history else None, samples)
        finish_trial(self.directory, self.sweep, trial_id, status, row, history, self.objectives)
        if checkpoint and Path(checkpoint).is_dir():  # a finished trial never resumes: keep what export needs
            ckpt.shrink(Path(checkpoint), self.keep)
        done = len(writer.trials)
        metric = self.objectives[0][0]
        value = row.get(metric)
        shown = f"{metric}={value:.4f}" if isinstance(value, float) and np.isfinite(value) else f"{metric}=n/a"
        group = group_seeds(trial.config)
        fused = f" (fused with {len(group) - 1} more)" if group else ""
        log.info(
            f"[{done}/{self.total}] trial {trial_id} {params.get('kind')}/{params.get('arch')}"
            + (f" seed {params.get('seed')} of {confirms}{fused}" if confirms else "")
            + f" {status} "
            f"after {len(history)} epoch(s): {shown}" + (f" ({reason[:120]})" if reason else "") + self._progress(done, trials, trial)
        )

    def _progress(self, done: int, trials: list, ended) -> str:
        """'; 2 running, about 14 min left': the rate of the trials recorded since this driver started. The trial that
        just ended is still RUNNING to Tune while its callbacks run: not counted."""
        self.recorded_here += 1
        running = sum(1 for t in trials if t.status == "RUNNING" and t is not ended)
        left = max(0, self.total - done)
        if not left:
            return ""
        minutes = (time.time() - self.opened) / self.recorded_here * left / 60
        return f"; {running} running, about {minutes:.0f} min left" if minutes >= 1 else f"; {running} running, under a minute left"
