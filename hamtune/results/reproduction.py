"""Did a reproduced configuration hold? The statistics of reproduce.parquet, in one place.

`hamtune reproduce` writes one row per (configuration, seed): the original seed trained again (its
`rerun`) and N new seeds. `summarise` compares the original trial's value with the spread of the new
seeds only; the terminal (`format_summary`) and the HTML report render that one summary.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from hamtune.results.layout import REPRODUCE
from hamtune.results.numbers import fmt
from hamtune.results.rank import Metric

KEY_METRICS = ("test_auroc", "test_auprc", "test_f1", "test_ssim", "test_psnr", "test_mse", "val_auroc")
SPREAD = (
    "a configuration holds on a metric when the original trial's value lies within the spread of the new seeds: "
    "[min, max] of their values, widened to the 95% interval of their mean where that is wider (a t-interval; for "
    "AUROC, AUPRC, F1, precision and recall on the logit scale, so it stays inside [0, 1])"
)


BOUNDED = frozenset({"auroc", "auprc", "f1", "precision", "recall"})  # metrics that live in [0, 1]
LOGIT_EDGE = 1e-4  # a value of exactly 0 or 1 is taken as this close to it on the logit scale
INTERVAL_RULE = (
    "95% t-interval of the mean over seeds; for AUROC, AUPRC, F1, precision and recall computed on the "
    "logit scale and mapped back, so it stays inside [0, 1]"
)


def is_bounded(name: str) -> bool:
    """Whether a metric column lives in [0, 1] (its interval is then taken on the logit scale)."""
    return bool(set(name.lower().split("_")) & BOUNDED)


def spread(values: np.ndarray, bounded: bool = False) -> tuple[float, float, float, float, float, float]:
    """(mean, std, ci low, ci high, spread low, spread high) of the new seeds' finite values. The interval is the
    95% t-interval of the mean; `bounded` (a metric in [0, 1]) takes it on the logit scale and maps it back, so it
    never leaves [0, 1] (a plain one over 2 seeds of AUROC 0.6 and 0.9 runs to 1.6)."""
    from scipy import stats

    values = values[np.isfinite(values)]
    if len(values) == 0:
        return (math.nan,) * 6
    mean = float(values.mean())
    if len(values) == 1:
        return mean, math.nan, math.nan, math.nan, mean, mean
    std = float(values.std(ddof=1))
    t = float(stats.t.ppf(0.975, len(values) - 1))
    if std == 0:
        low = high = mean
    elif bounded:
        logits = np.log(np.clip(values, LOGIT_EDGE, 1 - LOGIT_EDGE) / (1 - np.clip(values, LOGIT_EDGE, 1 - LOGIT_EDGE)))
        centre, half = float(logits.mean()), t * float(logits.std(ddof=1)) / math.sqrt(len(values))
        low, high = (float(1 / (1 + math.exp(-(centre + sign * half)))) for sign in (-1, 1))
        low, high = min(low, mean), max(high, mean)
    else:
        half = t * std / math.sqrt(len(values))
        low, high = mean - half, mean + half
    return mean, std, low, high, min(float(values.min()), low), max(float(values.max()), high)


def summarise(frame: pd.DataFrame, chosen: pd.DataFrame, metrics: tuple[str, ...]) -> pd.DataFrame:
    """Per configuration and metric: the original trial's value, its rerun, the new seeds' statistics, the verdict."""
    out = []
    originals = chosen.set_index("trial_id")
    for config_id, runs in frame.groupby("config_id", sort=False):
        is_original = runs["is_original"].astype(bool) if "is_original" in runs.columns else pd.Series(False, index=runs.index)
        fresh, rerun = runs[~is_original], runs[is_original]
        for name in metrics:
            if name not in runs.columns:
                continue
            known = name in originals.columns and config_id in originals.index
            original = float(originals.at[config_id, name]) if known else math.nan
            mean, std, low, high, lo, hi = spread(pd.to_numeric(fresh[name], errors="coerce").to_numpy(float), is_bounded(name))
            if len(fresh.dropna(subset=[name])) < 2 or not math.isfinite(original):
                verdict = "n/a"
            else:
                verdict = "holds" if lo <= original <= hi else "does not hold"
            out.append(
                {
                    "config_id": config_id,
                    "metric": name,
                    "original": original,
                    "rerun": float(rerun[name].iloc[0]) if len(rerun) else math.nan,
                    "seeds": int(np.isfinite(pd.to_numeric(fresh[name], errors="coerce")).sum()),
                    "mean": mean,
                    "std": std,
                    "ci_low": low,
                    "ci_high": high,
                    "verdict": verdict,
                }
            )
    return pd.DataFrame(out)


def format_summary(summary: pd.DataFrame, chosen: pd.DataFrame, metric: Metric) -> str:
    """The terminal table: one block per configuration, one line per metric."""
    if summary.empty:
        return f"no reproduction run finished with metrics; each run's status and reason are in {REPRODUCE}"
    lines = [f"holds / does not hold: {SPREAD} (needs 2+ new seeds)."]
    header = ("metric", "original", "rerun", "new seeds", "mean", "std", "95% CI", "verdict")
    for config_id, block in summary.groupby("config_id", sort=False):
        row = chosen.set_index("trial_id").loc[config_id]
        label = "/".join(str(row.get(k)) for k in ("kind", "arch") if k in row.index)
        lines.append("")
        lines.append(f"{config_id} (rank {int(row['rank'])} by {metric.column}, {label}, original seed {row.get('seed')}):")
        table = [header]
        for _, item in block.iterrows():
            ci = f"[{fmt(item['ci_low'])}, {fmt(item['ci_high'])}]" if math.isfinite(item["ci_low"]) else ""
            exact = item["original"] == item["rerun"]
            table.append(
                (
                    item["metric"],
                    fmt(item["original"]),
                    ("= " if exact else "") + fmt(item["rerun"]),
                    str(item["seeds"]),
                    fmt(item["mean"]),
                    fmt(item["std"]),
                    ci,
                    item["verdict"],
                )
            )
        widths = [max(len(r[i]) for r in table) for i in range(len(header))]
        lines += ["  " + "  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip() for r in table]
    lines.append("")
    lines.append("rerun: the original seed trained again ('=' marks a value identical to the sweep's).")
    return "\n".join(lines)
