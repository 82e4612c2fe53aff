"""The non-learned floor, scored into a sweep's own results folder, so every report of a sweep shows what a
network adds over a blur, a down/up-sampling and PCA of the same images.

A sweep calls `score_floor` when it ends: on each split its deep trials ran on (the same prepared caches,
fingerprint-checked, and the same split settings), the fast reconstructing baselines are fitted and scored
by `run_baselines`, exactly as `hamtune baselines` records them (role "classical: ..."), so the ranking,
the floor flags (results.floor) and the paired comparisons (results.intervals) find them beside the trials.
A split that already has its floor rows is skipped: a resumed or repeated call adds nothing.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.baselines.classical import parse_methods
from hamtune.baselines.run import run_baselines
from hamtune.config_fields import DATA_KEYS
from hamtune.data.same_data import sweep_data
from hamtune.results.layout import TRIALS
from hamtune.results.rank import DEEP_KINDS, RANKED_STATUSES, role
from hamtune.results.roles import Role, having
from hamtune.results.store import load_results

log = logging.getLogger(__name__)

FLOOR_METHODS = ("blur", "resample", "pca-32")  # seconds on 5,984 images at 64 px; IsolationForest and k-NN take minutes
SPLIT_OF = ("data_fingerprint", "test_data_fingerprint", *(k for k in DATA_KEYS if k != "seed"))
NOT_THERE = "run `hamtune baselines` on the sweep's data to add the floor"


def _plain(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.item() if isinstance(value, np.generic) else value


def split_key(row: pd.Series) -> tuple:
    """What decides a row's images: its data, external test data and split settings (not a model's seed)."""
    return tuple(_plain(row.get(k)) for k in SPLIT_OF)


def deep_splits(trials: pd.DataFrame) -> dict[tuple, pd.DataFrame]:
    """The finished deep trials, by the split they ran on."""
    kind = trials["kind"] if "kind" in trials.columns else pd.Series(None, index=trials.index)
    deep = trials[kind.isin(DEEP_KINDS) & trials["status"].isin(RANKED_STATUSES)]
    keys = [split_key(row) for _, row in deep.iterrows()]
    return {key: deep[[k == key for k in keys]] for key in dict.fromkeys(keys)}


def has_floor(trials: pd.DataFrame, key: tuple) -> bool:
    """Whether classical rows on this split are already recorded (by an earlier call or `hamtune baselines`)."""
    classical = trials[having(role(trials), Role.FLOOR)]
    return any(split_key(row) == key for _, row in classical.iterrows())


def floor_config(row: pd.Series):
    """The split (and seed) of a deep trial as the TrainConfig a baseline takes."""
    from hamtune.results.chosen import typed_config
    from hamtune.train.config import build_config

    values = {k: v for k, v in typed_config(row).items() if k in DATA_KEYS and (v is not None or k == "max_train_images")}
    return build_config(values, where=f"trials.parquet row {row['trial_id']}")


def score_floor(directory: Path, enabled: bool = True, methods: tuple[str, ...] = FLOOR_METHODS) -> list[dict]:
    """Score the floor on each split of the folder's deep trials that has none yet; returns the rows written.
    `enabled` False (a space's `floor: false`, `--no-floor`) does nothing."""
    from hamtune.paths import results_lock

    directory = Path(directory)
    if not enabled or not (directory / TRIALS).exists():
        return []
    rows: list[dict] = []
    with results_lock(directory):
        trials = load_results(directory)[0]
        for key, group in deep_splits(trials).items():
            if has_floor(trials, key):
                continue
            first = group.iloc[0]
            config = floor_config(first)
            data, test_data = sweep_data(group, None, None, fix=NOT_THERE)
            started = time.perf_counter()
            written = run_baselines(
                config.at_preprocessing(data.manifest),
                data,
                parse_methods(methods, seed=config.seed),
                directory,
                str(first.get("sweep") or directory.name),
                test_data=test_data,
            )
            log.info(
                "floor: %s scored on %s in %.1f s (%d rows)", ", ".join(methods), data.name, time.perf_counter() - started, len(written)
            )
            rows += written
    return rows
