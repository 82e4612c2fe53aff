"""`hamtune reproduce`: retrain a sweep's best configurations on new seeds, on the same data, to see
whether a winner holds up or was a lucky draw.

Each configuration runs again with its original seed (on CPU this gives the original metrics
exactly: same config, same data, same thread count) and with N new seeds. The runs are one grid of
(config, seed) in a Ray Tune Tuner, trained by the sweep's own trainable. This module plans the grid
(Ray-free); sweep/tune/reproduce.py runs it and records reproduce.parquet.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.config_fields import MACHINE
from hamtune.errors import UsageError
from hamtune.sweep.confirm import new_seeds
from hamtune.train import checkpoint as ckpt
from hamtune.train.config import TrainConfig

ROW_NOT_CONFIG = MACHINE  # in a trials row: the device that ran it, and no thread count


# ---- what each run trains (the trials: results.rank.top_trials; the data: same_data) ----------------


def has_checkpoint_config(row: pd.Series) -> bool:
    path = row.get("checkpoint")
    return isinstance(path, str) and (Path(path) / ckpt.CONFIG).exists()


def trial_values(row: pd.Series) -> dict:
    """The config a trial ran: its checkpoint's config.json (exact, thread count included), else its row."""
    if has_checkpoint_config(row):
        return ckpt.read_json(Path(row["checkpoint"]) / ckpt.CONFIG)
    values: dict = {}
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


def plan_runs(rows: pd.DataFrame, seeds: int, cpus: float | None, gpus: float) -> tuple[list[dict], dict[str, dict]]:
    """The grid: one run per (configuration, seed), and each configuration's values by trial id."""
    if seeds < 0:
        raise UsageError(f"--seeds must be 0 or more, got {seeds}")
    runs, configs = [], {}
    for _, row in rows.iterrows():
        values = trial_values(row)
        trial_id = str(row["trial_id"])
        configs[trial_id] = values
        original = int(values.get("seed", 0))
        threads = cpus or float(values.get("num_threads") or 1)
        epochs = int(row["epochs_run"]) if pd.notna(row.get("epochs_run")) and row["epochs_run"] > 0 else None
        for seed in [original, *new_seeds(original, seeds)]:
            runs.append(
                {"config_id": trial_id, "seed": seed, "is_original": seed == original, "stop_after": epochs, "cpus": threads, "gpus": gpus}
            )
    return runs, configs
