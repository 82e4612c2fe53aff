"""`hamtune reproduce` inside Ray Tune: the planned grid (sweep/reproduce.py: one run per configuration and seed)
as one Tuner trained by the sweep's own trainable, each run's delivered model a row of reproduce.parquet."""

from __future__ import annotations

import logging
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hamtune.data.prepare import Prepared
from hamtune.data.same_data import sweep_data
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.results.layout import DEFAULT_OBJECTIVE, REPRODUCE
from hamtune.results.rank import Metric, objective, top_trials
from hamtune.results.store import delivered_epoch, load_results, write_parquet
from hamtune.sweep.reproduce import has_checkpoint_config, plan_runs
from hamtune.train import checkpoint as ckpt
from hamtune.train.config import MAX_SEEDS

log = logging.getLogger(__name__)

EXPERIMENT = "reproduce"
RUNTIME = ("train_loss", "threshold")


@dataclass
class ReproduceOptions:
    """What the command line asks for; None means: as the sweep ran it."""

    top: int = 3
    seeds: int = 5
    metric: str | None = None
    data: Path | None = None
    test_data: Path | None = None
    address: str | None = None
    num_cpus: int | None = None
    cpus_per_trial: float | None = None
    gpus_per_trial: float = 0.0

    def __post_init__(self) -> None:
        from hamtune.sweep.tune.runner import check_resources

        if self.top < 1 or self.seeds < 0 or self.seeds > MAX_SEEDS:
            raise UsageError(f"--top must be at least 1 and --seeds between 0 and {MAX_SEEDS}, got {self.top} and {self.seeds}")
        check_resources(self.gpus_per_trial, self.num_cpus, self.cpus_per_trial)


def reproduce_trial(
    config: dict,
    data: Prepared,
    test_data: Prepared | None = None,
    configs: dict | None = None,
    objectives: tuple[tuple[str, str], ...] = (DEFAULT_OBJECTIVE,),
) -> None:
    """One (configuration, seed) run: the sweep's trainable with only the seed changed (`config` is Tune's grid
    point), delivering its best epoch by the sweep's own objective."""
    from hamtune.sweep.tune.trainable import run_trial

    run = config["run"]
    assert configs is not None  # always bound by tune.with_parameters in run_reproduce
    run_trial({**configs[run["config_id"]], "seed": run["seed"]}, data, test_data, objectives)


def run_resources(config: dict) -> dict:
    """The original trial's CPUs (= its torch threads) and the requested GPUs."""
    return {"cpu": config["run"]["cpus"], "gpu": config["run"]["gpus"]}


def _stopper():
    from ray import tune

    class StopAtOriginalEpochs(tune.Stopper):
        """A trial that ASHA stopped early is reproduced for as many epochs as it ran, no more."""

        def __call__(self, trial_id: str, result: dict) -> bool:
            limit = result.get("config", {}).get("run", {}).get("stop_after")
            return limit is not None and result.get("epoch", 0) >= limit

        def stop_all(self) -> bool:
            return False

    return StopAtOriginalEpochs()


def _progress(total: int):
    from ray import tune

    class Progress(tune.Callback):
        """One line per finished run, printed by the driver."""

        def __init__(self) -> None:
            self.done = 0

        def _line(self, trial, status: str) -> None:
            self.done += 1
            run, last = trial.config["run"], trial.last_result or {}
            value = last.get("test_auroc")
            shown = f"test_auroc={value:.4f}" if isinstance(value, float) and math.isfinite(value) else status
            tag = " (original seed)" if run["is_original"] else ""
            log.info("[%d/%d] %s seed %s%s: %s", self.done, total, run["config_id"], run["seed"], tag, shown)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._line(trial, str((trial.last_result or {}).get("status", "completed")))

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._line(trial, "failed")

    return Progress()


# ---- running and recording ------------------------------------------------------------------------


def _row(result, sweep: str, selection: tuple[str, str]) -> dict:
    """One run's row: the metrics of the model it delivers (its best validation epoch, as the sweep's rows)."""
    run, last = result.config["run"], dict(result.metrics or {})
    status = str(last.get("status") or "completed")
    if result.error is not None:
        status = "failed"
    elif status == "running":
        status = "stopped"
    history = ckpt.load_history(result.checkpoint.path)[0] if result.checkpoint is not None else []
    delivered = delivered_epoch(history, *selection) or last
    metrics = {k: v for k, v in delivered.items() if k.startswith(("val_", "test_")) or k in RUNTIME}
    return {
        "sweep": sweep,
        "config_id": run["config_id"],
        "seed": int(run["seed"]),
        "is_original": bool(run["is_original"]),
        "status": status,
        "reason": last.get("reason") or (first_line(result.error, 300) if result.error else None),
        **metrics,
        "epochs_run": int(last.get("epoch") or 0),
        "wall_time_s": float(last.get("time_total_s", math.nan)),
        "device": last.get("device"),
        "node_id": last.get("node_id"),
        "checkpoint": result.checkpoint.path if result.checkpoint is not None else None,
    }


def run_reproduce(directory: Path, options: ReproduceOptions) -> tuple[pd.DataFrame, pd.DataFrame, Metric]:
    """Retrain the top configurations on their original and new seeds; write and return reproduce.parquet."""
    from ray import tune

    from hamtune.sweep.tune.runner import concurrency, in_memory, start_ray, tune_loggers, tune_settings

    directory = Path(directory).resolve()
    chosen, metric = top_trials(directory, options.top, options.metric, deep=True, configurations=True)
    if not len(chosen):
        raise HamtuneError(f"{directory}: no ranked network trial to reproduce (seed ensembles and baselines are not retrained)")
    objective_of = objective(load_results(directory)[0])  # the epoch each run delivers, as the sweep chose it
    selection = (objective_of.column, objective_of.mode)
    data, test_data = sweep_data(chosen, options.data, options.test_data)
    runs, configs = plan_runs(chosen, options.seeds, options.cpus_per_trial, options.gpus_per_trial)
    sweep = str(chosen["sweep"].iloc[0]) if "sweep" in chosen.columns else directory.name
    log.info(
        "reproducing the top %d of %s by %s: %d run(s) (original seed + %d new) on %s (%s)",
        len(chosen),
        sweep,
        metric.label,
        len(runs),
        options.seeds,
        data.name,
        data.fingerprint,
    )
    guessed = [str(t) for t, ok in zip(chosen["trial_id"], chosen.apply(has_checkpoint_config, axis=1)) if not ok]
    if guessed:
        log.info(
            "note: no checkpoint left for %s: config read from trials.parquet, %g thread(s) per run; the original "
            "seed may not give the original numbers",
            ", ".join(guessed),
            options.cpus_per_trial or 1,
        )
    with tune_settings():
        start_ray(options.address, options.num_cpus)
        most_cpus = max(r["cpus"] for r in runs)
        elastic = options.address is not None  # a node that joins mid-run gets runs only if no reused process takes them first
        limit = concurrency(most_cpus, options.gpus_per_trial, None, elastic=elastic)
        trainable = tune.with_resources(
            tune.with_parameters(
                reproduce_trial,
                data=in_memory(data),
                test_data=in_memory(test_data) if test_data else None,
                configs=configs,
                objectives=(selection,),
            ),
            run_resources,  # type: ignore[arg-type]  # Tune accepts a dict of resources from the callable at run time
        )
        storage = directory / EXPERIMENT
        shutil.rmtree(storage, ignore_errors=True)
        tuner = tune.Tuner(
            trainable,
            param_space={"run": tune.grid_search(runs)},
            tune_config=tune.TuneConfig(max_concurrent_trials=limit, reuse_actors=not elastic),
            run_config=tune.RunConfig(
                name="tune",
                storage_path=str(storage),
                callbacks=[_progress(len(runs)), *tune_loggers()],
                stop=_stopper(),
                verbose=0,
                failure_config=tune.FailureConfig(max_failures=2),
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        results = tuner.fit()
    rows = [_row(result, sweep, selection) for result in results]  # type: ignore[attr-defined]  # ResultGrid has __getitem__ and __len__
    if len(rows) < len(runs):
        raise HamtuneError(f"only {len(rows)} of {len(runs)} reproduction runs finished; nothing written")
    frame = pd.DataFrame(rows).sort_values(["config_id", "is_original", "seed"], ascending=[True, False, True], kind="stable")
    order = {trial_id: i for i, trial_id in enumerate(chosen["trial_id"])}
    frame = frame.sort_values("config_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    write_parquet(frame, directory / REPRODUCE)
    failed = frame[~frame["status"].isin(("completed", "stopped"))]
    if len(failed):
        first = failed.iloc[0]
        raise HamtuneError(
            f"{len(failed)} of {len(frame)} reproduction run(s) failed (configuration {first['config_id']} seed "
            f"{first['seed']}: {first_line(first.get('reason') or first['status'], 200)}); all runs are in "
            f"{directory / REPRODUCE}"
        )
    return frame, chosen, metric
