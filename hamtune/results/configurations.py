"""Configurations over seeds: one trial is one seed's draw, a configuration is what a user takes away.

Trials that share a `config_id` are seeds of one configuration: the confirm stage's seeds carry the id of
the search trial they repeat, and `hamtune reproduce`'s new seeds the id of the trial they retrain (its rerun
of the original seed is left out: it is the trial again). Results without a `config_id` (single runs, older
sweeps) count each trial as its own configuration. The chosen configuration is the best MEAN validation
objective among those measured on 2+ seeds, when any are; test metrics are only reported.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hamtune.results.numbers import fmt
from hamtune.results.rank import RANKED_STATUSES, Metric
from hamtune.results.reproduction import is_bounded, spread

SEED_METRICS = ("val_auroc", "test_auroc", "test_auprc", "test_f1", "test_ssim", "test_mse")
DESCRIBE = ("kind", "arch", "latent_dim", "lr", "score")


def config_ids(trials: pd.DataFrame) -> pd.Series:
    """Each trial's configuration: its `config_id` where it has one, else itself."""
    own = trials["trial_id"].astype(str)
    if "config_id" not in trials.columns:
        return own
    return trials["config_id"].where(trials["config_id"].notna(), own).astype(str)


def seed_rows(trials: pd.DataFrame, reproduced: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every ranked seed of every configuration: the trials, plus `reproduce`'s new seeds of them."""
    rows = trials[trials["status"].isin(RANKED_STATUSES)].assign(config_id=lambda t: config_ids(t))
    if reproduced is not None and len(reproduced):
        keep = pd.Series(True, index=reproduced.index)
        if "is_original" in reproduced.columns:
            keep &= ~reproduced["is_original"].astype(bool)
        if "status" in reproduced.columns:
            keep &= reproduced["status"].isin(RANKED_STATUSES)
        fresh = reproduced[keep]
        fresh = fresh[fresh["config_id"].astype(str).isin(set(rows["trial_id"].astype(str)))]
        rows = pd.concat([rows, fresh.assign(config_id=fresh["config_id"].astype(str))], ignore_index=True)
    return rows


def per_configuration(seeds: pd.DataFrame, select: Metric, metrics: tuple[str, ...] = SEED_METRICS) -> pd.DataFrame:
    """One row per configuration: n seeds, and the mean, sd and 95% interval of the mean of each metric (results.reproduction.INTERVAL_RULE:
    a t-interval, on the logit scale for metrics in [0, 1], so every interval of a mean AUROC lies inside [0, 1]);
    best first by the mean of `select` (the validation objective), configurations with 2+ seeds ahead."""
    columns = [c for c in (select.column, *(m for m in metrics if m != select.column)) if c in seeds.columns]
    if seeds.empty:
        return pd.DataFrame()
    ids = seeds["config_id"].astype(str)
    own = (seeds["trial_id"].astype(str) == ids).to_numpy()
    described = seeds.assign(_own=~own, config_id=ids).sort_values("_own", kind="stable").drop_duplicates("config_id")
    order = ids.drop_duplicates()  # configurations in order of first appearance, as groupby(sort=False) gives them
    frame = pd.DataFrame({"config_id": order.to_numpy()})
    grouped = seeds.assign(config_id=ids).groupby("config_id", sort=False)
    frame["n"] = grouped.size().reindex(order).to_numpy()
    seed_list = grouped["seed"].agg(lambda s: ",".join(str(v) for v in s)) if "seed" in seeds.columns else None
    frame["seeds"] = seed_list.reindex(order).to_numpy() if seed_list is not None else ""
    described = described.set_index("config_id").reindex(order)
    for key in DESCRIBE:
        if key in seeds.columns:
            frame[key] = described[key].to_numpy()
    for name in columns:
        values = pd.to_numeric(seeds[name], errors="coerce").astype(float).where(lambda v: np.isfinite(v))
        by_config = values.groupby(ids, sort=False)
        finite = by_config.count().reindex(order).to_numpy()
        stats = np.full((len(order), 4), math.nan)
        stats[:, 0] = by_config.mean().reindex(order).to_numpy()  # 0 or 1 finite value: the mean alone
        rows, array = by_config.indices, values.to_numpy(float)
        for i in np.flatnonzero(finite >= 2):  # the interval only where there are seeds to spread
            stats[i] = spread(array[rows[order.iloc[i]]], is_bounded(name))[:4]
        for j, suffix in enumerate(("mean", "sd", "ci_low", "ci_high")):
            frame[f"{name}_{suffix}"] = stats[:, j]
    key = f"{select.column}_mean"
    order = frame[key] if select.higher_is_better else -frame[key]
    frame = frame.assign(_confirmed=frame["n"] >= 2, _order=order.fillna(-np.inf))
    frame = frame.sort_values(["_confirmed", "_order"], ascending=False, kind="stable").drop(columns=["_confirmed", "_order"])
    return frame.reset_index(drop=True).assign(rank=lambda f: np.arange(1, len(f) + 1))


def has_seeds(table: pd.DataFrame) -> bool:
    return len(table) > 0 and bool((table["n"] >= 2).any())


def mean_sd(row: pd.Series, name: str) -> str:
    """'0.842 +- 0.018 [0.820, 0.864]' (mean +- sd [95% interval of the mean]), to the sd's second significant
    digit (more would be noise); the mean alone for one seed."""
    mean, sd = row.get(f"{name}_mean", math.nan), row.get(f"{name}_sd", math.nan)
    if not isinstance(mean, float) or not math.isfinite(mean):
        return "-"
    if not math.isfinite(sd):
        return fmt(mean)
    places = min(6, max(1, 1 - math.floor(math.log10(sd)))) if sd > 0 else 4
    low, high = row[f"{name}_ci_low"], row[f"{name}_ci_high"]
    return f"{mean:.{places}f} +- {sd:.{places}f} [{low:.{places}f}, {high:.{places}f}]"


def display(table: pd.DataFrame, select: Metric, metrics: tuple[str, ...] = ("test_auroc", "test_auprc")) -> pd.DataFrame:
    """The table as people read it: rank, configuration, seeds, and mean +- sd [95% CI] per metric (results.reproduction.INTERVAL_RULE)."""
    shown = pd.DataFrame({"rank": table["rank"], "config": table["config_id"], "seeds": table["n"]})
    for key in DESCRIBE:
        if key in table.columns:
            shown[key] = table[key].map(lambda v: fmt(v) if isinstance(v, float) else ("" if v is None else str(v)))
    for name in (select.column, *metrics):
        if f"{name}_mean" in table.columns:
            shown[f"{name} mean +- sd [95% CI]"] = [mean_sd(row, name) for _, row in table.iterrows()]
    return shown
