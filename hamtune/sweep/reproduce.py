"""`hamtune reproduce`: retrain a sweep's best configurations on new seeds, on the same data, to see
whether a winner holds up or was a lucky draw.

Each configuration runs again with its original seed (on CPU this gives the original metrics
exactly: same config, same data, same thread count) and with N new seeds. The runs are one grid of
(config, seed) in a Ray Tune Tuner, trained by the sweep's own trainable.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.prepare import Prepared, load_prepared
from hamtune.errors import HamtuneError
from hamtune.report.rank import Metric, rank, resolve_metric
from hamtune.sweep.results import load_results, write_parquet
from hamtune.train import checkpoint as ckpt
from hamtune.train.config import TrainConfig

REPRODUCE = "reproduce.parquet"
EXPERIMENT = "reproduce"
KEY_METRICS = ("test_auroc", "test_auprc", "test_f1", "test_ssim", "test_psnr", "test_mse", "val_auroc")
SPREAD = (
    "a configuration holds on a metric when the original trial's value lies within the spread of the new seeds: "
    "[min, max] of their values, widened to the 95% t-interval of their mean where that is wider"
)
RUNTIME = ("train_loss", "threshold")
ROW_NOT_CONFIG = ("device", "num_threads")  # in a trials row: the device that ran it, and no thread count


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


# ---- which trials ---------------------------------------------------------------------------------


def objective(trials: pd.DataFrame, metric: str | None = None) -> Metric:
    """The ranking metric: `--metric` when given, else the sweep's own objective from trials.parquet."""
    if metric is not None:
        return resolve_metric(metric, trials)
    if "objective_metric" not in trials.columns or trials["objective_metric"].dropna().empty:
        return resolve_metric("val_auroc", trials)
    column = str(trials["objective_metric"].dropna().mode().iloc[0])
    modes = trials.loc[trials["objective_metric"] == column, "objective_mode"].dropna()
    return Metric(column, (str(modes.iloc[0]) if len(modes) else "max") == "max")


def leaderboard(trials: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Completed and stopped trials best first (1-based `rank`), as the report ranks them; one test set only."""
    boards = rank(trials, metric).boards
    return next(iter(boards.values()))


def top_trials(directory: Path, top: int, metric: str | None = None) -> tuple[pd.DataFrame, Metric]:
    """The `top` best trials of a results folder and the metric that ranked them."""
    if top < 1:
        raise HamtuneError(f"--top must be at least 1, got {top}")
    trials = load_results(directory)[0]
    chosen = objective(trials, metric)
    return leaderboard(trials, chosen).head(top), chosen


# ---- the same data --------------------------------------------------------------------------------


def checked_data(path: Path | None, fingerprint: str | None, what: str) -> Prepared:
    """The prepared cache a trial used, refused unless it is byte for byte the data the trial saw."""
    if path is None:
        raise HamtuneError(f"trials.parquet names no {what} folder; point --data at the prepared cache ({fingerprint})")
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise HamtuneError(
            f"{what} {path} is missing (expected fingerprint {fingerprint}, found none); "
            "point --data at the moved prepared cache"
        )
    found = load_prepared(path, verify=False).fingerprint
    if found != fingerprint:
        raise HamtuneError(
            f"{what} {path} has fingerprint {found}, but the sweep was trained on {fingerprint}; "
            "a reproduction must use the same data (point --data at the sweep's prepared cache)"
        )
    return load_prepared(path)


def _one(rows: pd.DataFrame, column: str):
    values = rows[column].dropna().unique() if column in rows.columns else []
    if len(values) > 1:
        raise HamtuneError(f"the chosen trials ran on different data ({column}: {', '.join(map(str, values))}); "
                           "reproduce them one sweep at a time")
    return values[0] if len(values) else None


def sweep_data(rows: pd.DataFrame, data: Path | None, test_data: Path | None) -> tuple[Prepared, Prepared | None]:
    """The main (and external test) data of the chosen trials, fingerprint-checked."""
    main = checked_data(data or _one(rows, "data_path"), _one(rows, "data_fingerprint"), "data")
    test_path = test_data or _one(rows, "test_path")
    test = checked_data(test_path, _one(rows, "test_data_fingerprint"), "test data") if test_path else None
    return main, test


# ---- what each run trains -------------------------------------------------------------------------


def has_checkpoint_config(row: pd.Series) -> bool:
    path = row.get("checkpoint")
    return isinstance(path, str) and (Path(path) / ckpt.CONFIG).exists()


def trial_values(row: pd.Series) -> dict:
    """The config a trial ran: its checkpoint's config.json (exact, thread count included), else its row."""
    if has_checkpoint_config(row):
        return ckpt.read_json(Path(row["checkpoint"]) / ckpt.CONFIG)
    values = {}
    for name, spec in TrainConfig.__dataclass_fields__.items():
        if name in ROW_NOT_CONFIG:
            continue
        value = row.get(name)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            if "None" in str(spec.type):
                values[name] = None
            continue
        values[name] = value.item() if isinstance(value, np.generic) else value
    return values


def new_seeds(original: int, n: int) -> list[int]:
    """original+1 ... original+n: distinct from the original and the same on every rerun."""
    return [original + i for i in range(1, n + 1)]


def plan_runs(rows: pd.DataFrame, seeds: int, cpus: float | None, gpus: float) -> tuple[list[dict], dict[str, dict]]:
    """The grid: one run per (configuration, seed), and each configuration's values by trial id."""
    if seeds < 0:
        raise HamtuneError(f"--seeds must be 0 or more, got {seeds}")
    runs, configs = [], {}
    for _, row in rows.iterrows():
        values = trial_values(row)
        trial_id = str(row["trial_id"])
        configs[trial_id] = values
        original = int(values.get("seed", 0))
        threads = cpus or float(values.get("num_threads") or 1)
        epochs = int(row["epochs_run"]) if pd.notna(row.get("epochs_run")) and row["epochs_run"] > 0 else None
        for seed in [original, *new_seeds(original, seeds)]:
            runs.append({"config_id": trial_id, "seed": seed, "is_original": seed == original,
                         "stop_after": epochs, "cpus": threads, "gpus": gpus})
    return runs, configs


def reproduce_trial(config: dict, data: Prepared, test_data: Prepared | None = None, configs: dict | None = None) -> None:
    """One (configuration, seed) run: the sweep's trainable with only the seed changed."""
    from hamtune.sweep.trainable import run_trial

    run = config["run"]
    run_trial({**configs[run["config_id"]], "seed": run["seed"]}, data, test_data)


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
            print(f"[{self.done}/{total}] {run['config_id']} seed {run['seed']}{tag}: {shown}", flush=True)

        def on_trial_complete(self, iteration, trials, trial, **info) -> None:
            self._line(trial, str((trial.last_result or {}).get("status", "completed")))

        def on_trial_error(self, iteration, trials, trial, **info) -> None:
            self._line(trial, "failed")

    return Progress()


# ---- running and recording ------------------------------------------------------------------------


def _row(result, sweep: str) -> dict:
    run, last = result.config["run"], dict(result.metrics or {})
    status = str(last.get("status") or "completed")
    if result.error is not None:
        status = "failed"
    elif status == "running":
        status = "stopped"
    metrics = {k: v for k, v in last.items() if k.startswith(("val_", "test_")) or k in RUNTIME}
    return {
        "sweep": sweep, "config_id": run["config_id"], "seed": int(run["seed"]), "is_original": bool(run["is_original"]),
        "status": status, "reason": last.get("reason") or (str(result.error).splitlines()[0][:300] if result.error else None),
        **metrics,
        "epochs_run": int(last.get("epoch") or 0), "wall_time_s": float(last.get("time_total_s", math.nan)),
        "device": last.get("device"), "node_id": last.get("node_id"),
        "checkpoint": result.checkpoint.path if result.checkpoint is not None else None,
    }


def run_reproduce(directory: Path, options: ReproduceOptions) -> tuple[pd.DataFrame, pd.DataFrame, Metric]:
    """Retrain the top configurations on their original and new seeds; write and return reproduce.parquet."""
    from ray import tune

    from hamtune.sweep.runner import concurrency, configure_tune, in_memory, start_ray

    directory = Path(directory).resolve()
    chosen, metric = top_trials(directory, options.top, options.metric)
    data, test_data = sweep_data(chosen, options.data, options.test_data)
    runs, configs = plan_runs(chosen, options.seeds, options.cpus_per_trial, options.gpus_per_trial)
    sweep = str(chosen["sweep"].iloc[0]) if "sweep" in chosen.columns else directory.name
    print(f"reproducing the top {len(chosen)} of {sweep} by {metric.label}: {len(runs)} run(s) "
          f"(original seed + {options.seeds} new) on {data.name} ({data.fingerprint})", flush=True)
    guessed = [str(t) for t, ok in zip(chosen["trial_id"], chosen.apply(has_checkpoint_config, axis=1)) if not ok]
    if guessed:
        print(f"note: no checkpoint left for {', '.join(guessed)}: config read from trials.parquet, "
              f"{options.cpus_per_trial or 1:g} thread(s) per run; the original seed may not give the original numbers",
              flush=True)
    configure_tune()
    start_ray(options.address, options.num_cpus)
    most_cpus = max(r["cpus"] for r in runs)
    limit = concurrency(most_cpus, options.gpus_per_trial, None)
    trainable = tune.with_resources(
        tune.with_parameters(reproduce_trial, data=in_memory(data), test_data=in_memory(test_data) if test_data else None,
                             configs=configs),
        run_resources,
    )
    storage = directory / EXPERIMENT
    shutil.rmtree(storage, ignore_errors=True)
    tuner = tune.Tuner(
        trainable,
        param_space={"run": tune.grid_search(runs)},
        tune_config=tune.TuneConfig(max_concurrent_trials=limit, reuse_actors=True),
        run_config=tune.RunConfig(
            name="tune", storage_path=str(storage), callbacks=[_progress(len(runs))], stop=_stopper(), verbose=0,
            failure_config=tune.FailureConfig(max_failures=2), checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )
    results = tuner.fit()
    rows = [_row(result, sweep) for result in results]
    if len(rows) < len(runs):
        raise HamtuneError(f"only {len(rows)} of {len(runs)} reproduction runs finished; nothing written")
    frame = pd.DataFrame(rows).sort_values(["config_id", "is_original", "seed"], ascending=[True, False, True], kind="stable")
    order = {trial_id: i for i, trial_id in enumerate(chosen["trial_id"])}
    frame = frame.sort_values("config_id", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)
    write_parquet(frame, directory / REPRODUCE)
    return frame, chosen, metric


# ---- did it hold ----------------------------------------------------------------------------------


def spread(values: np.ndarray) -> tuple[float, float, float, float, float, float]:
    """(mean, std, ci low, ci high, spread low, spread high) of the new seeds' finite values."""
    from scipy import stats

    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (math.nan,) * 6
    mean = float(values.mean())
    if len(values) == 1:
        return mean, math.nan, math.nan, math.nan, mean, mean
    std = float(values.std(ddof=1))
    half = float(stats.t.ppf(0.975, len(values) - 1)) * std / math.sqrt(len(values))
    low, high = mean - half, mean + half
    return mean, std, low, high, min(float(values.min()), low), max(float(values.max()), high)


def summarise(frame: pd.DataFrame, chosen: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per configuration and metric: the original trial's value, its rerun, the new seeds' statistics, the verdict."""
    out = []
    originals = chosen.set_index("trial_id")
    for config_id, runs in frame.groupby("config_id", sort=False):
        fresh, rerun = runs[~runs["is_original"]], runs[runs["is_original"]]
        for name in metrics:
            if name not in runs.columns:
                continue
            original = float(originals.at[config_id, name]) if name in originals.columns else math.nan
            mean, std, low, high, lo, hi = spread(pd.to_numeric(fresh[name], errors="coerce").to_numpy(float))
            if len(fresh.dropna(subset=[name])) < 2 or not math.isfinite(original):
                verdict = "n/a"
            else:
                verdict = "holds" if lo <= original <= hi else "does not hold"
            out.append({
                "config_id": config_id, "metric": name, "original": original,
                "rerun": float(rerun[name].iloc[0]) if len(rerun) else math.nan,
                "seeds": int(np.isfinite(pd.to_numeric(fresh[name], errors="coerce")).sum()),
                "mean": mean, "std": std, "ci_low": low, "ci_high": high, "verdict": verdict,
            })
    return pd.DataFrame(out)


def _num(value: float) -> str:
    return "" if value is None or not math.isfinite(value) else f"{value:.4g}"


def format_summary(summary: pd.DataFrame, chosen: pd.DataFrame, metric: Metric) -> str:
    """The terminal table: one block per configuration, one line per metric."""
    lines = [f"holds / does not hold: {SPREAD} (needs 2+ new seeds)."]
    header = ("metric", "original", "rerun", "new seeds", "mean", "std", "95% CI", "verdict")
    for config_id, block in summary.groupby("config_id", sort=False):
        row = chosen.set_index("trial_id").loc[config_id]
        label = "/".join(str(row.get(k)) for k in ("kind", "arch") if k in row.index)
        lines.append("")
        lines.append(f"{config_id} (rank {int(row['rank'])} by {metric.column}, {label}, original seed {row.get('seed')}):")
        table = [header]
        for _, item in block.iterrows():
            ci = f"[{_num(item['ci_low'])}, {_num(item['ci_high'])}]" if math.isfinite(item["ci_low"]) else ""
            exact = item["original"] == item["rerun"]
            table.append((
                item["metric"], _num(item["original"]), ("= " if exact else "") + _num(item["rerun"]), str(item["seeds"]),
                _num(item["mean"]), _num(item["std"]), ci, item["verdict"],
            ))
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.append("")
    lines.append("rerun: the original seed trained again ('=' marks a value identical to the sweep's).")
    return "\n".join(lines)
