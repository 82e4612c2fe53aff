"""How sure a figure is: bootstrap intervals of test AUROC/AUPRC, paired differences, and the expected best
value of n trials (Dodge et al. 2019), from the per-image scores a results folder already stores.

A bootstrap resample is drawn per label (stratified: every resample has the test set's numbers of normal
and anomalous images), with a fixed seed, and held as a matrix of counts (how often each image is drawn),
so every resample's AUROC and AUPRC come from one vectorised pass over the images sorted by score. Paired
comparisons apply the same resamples to two models' scores of the same images. `scipy.stats.bootstrap` is
not used: it cannot stratify by label nor share resamples between two metrics.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from hamtune.results.rank import Ranking
from hamtune.results.roles import Role, having, role_of

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95
INTERVAL_METRICS = ("test_auroc", "test_auprc")


def resample_indices(labels: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """(resamples, N) image indices drawn with replacement within each label: the draws every interval here uses."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    parts = [rng.choice(np.flatnonzero(labels == value), size=(resamples, int((labels == value).sum()))) for value in (0, 1)]
    return np.concatenate(parts, axis=1)


def _counts(indices: np.ndarray, n: int) -> np.ndarray:
    """How often each of n images is drawn in each resample: (resamples, n) int32."""
    flat = (indices + n * np.arange(len(indices))[:, None]).ravel()
    return np.bincount(flat, minlength=len(indices) * n).reshape(len(indices), n).astype(np.int32)


def weighted_auroc_auprc(labels: np.ndarray, scores: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """AUROC and average precision (as scikit-learn computes them, ties included) of each row of `weights`
    (B, N): image i counted weights[b, i] times (whole counts). Rows without both classes give NaN. The counts are
    summed as integers, exact and faster than floats, then divided once."""
    labels, scores = np.asarray(labels).astype(bool), np.asarray(scores, dtype=float)
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    starts = np.flatnonzero(np.r_[True, ranked[1:] != ranked[:-1]])  # groups of tied scores, highest first
    w = weights[:, order].astype(np.int32)
    pos = np.add.reduceat(w * labels[order], starts, axis=1)
    neg = np.add.reduceat(w, starts, axis=1) - pos
    n_pos, n_neg = pos.sum(1), neg.sum(1)
    tp, fp = np.cumsum(pos, axis=1), np.cumsum(neg, axis=1)
    pos = pos.astype(float)
    with np.errstate(invalid="ignore", divide="ignore"):
        auroc = 1.0 - (pos * (fp - 0.5 * neg)).sum(1) / (n_pos * n_neg).astype(float)  # negatives above each group, half its ties
        precision = np.where(tp + fp > 0, tp / np.maximum(tp + fp, 1), 0.0)
        auprc = (pos * precision).sum(1) / n_pos
    bad = (n_pos == 0) | (n_neg == 0)
    return np.where(bad, np.nan, auroc), np.where(bad, np.nan, auprc)


def _percentiles(values: np.ndarray, level: float = LEVEL) -> tuple[float, float]:
    values = values[np.isfinite(values)]
    if not len(values):
        return math.nan, math.nan
    low, high = np.percentile(values, [50 * (1 - level), 50 * (1 + level)])
    return float(low), float(high)


@dataclass(frozen=True)
class Interval:
    """An estimate (on all images) and its percentile bootstrap interval."""

    value: float
    low: float
    high: float

    @property
    def excludes_zero(self) -> bool:
        return self.low > 0 or self.high < 0


def bootstrap(labels: np.ndarray, scores: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> dict[str, Interval]:
    """95% stratified bootstrap intervals of AUROC and AUPRC of one model's test scores."""
    labels = np.asarray(labels)
    full = weighted_auroc_auprc(labels, scores, np.ones((1, len(labels))))
    drawn = weighted_auroc_auprc(labels, scores, _counts(resample_indices(labels, resamples, seed), len(labels)))
    return {name: Interval(float(full[i][0]), *_percentiles(drawn[i])) for i, name in enumerate(("auroc", "auprc"))}


def paired_difference(
    labels: np.ndarray, scores_a: np.ndarray, scores_b: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED
) -> Interval:
    """AUROC(a) - AUROC(b) of two models' scores of the same images, and its interval over shared resamples."""
    labels = np.asarray(labels)
    ones = np.ones((1, len(labels)))
    weights = _counts(resample_indices(labels, resamples, seed), len(labels))
    value = weighted_auroc_auprc(labels, scores_a, ones)[0][0] - weighted_auroc_auprc(labels, scores_b, ones)[0][0]
    drawn = weighted_auroc_auprc(labels, scores_a, weights)[0] - weighted_auroc_auprc(labels, scores_b, weights)[0]
    return Interval(float(value), *_percentiles(drawn))


def resample_weights(labels: np.ndarray, resamples: int = RESAMPLES, seed: int = SEED) -> np.ndarray:
    """The (resamples, N) counts `bootstrap` and `paired_difference` draw, for a caller that measures many models on
    the same images: each model's resampled AUROCs then come from one pass, and differences pair as theirs do."""
    return _counts(resample_indices(labels, resamples, seed), len(labels))


def from_draws(value: float, drawn: np.ndarray) -> Interval:
    """An estimate and the percentile interval of its resampled values (as `bootstrap` and `paired_difference` give)."""
    return Interval(float(value), *_percentiles(drawn))


def decimals(low: float, high: float) -> int:
    """Decimals that an interval supports: two significant digits of its half-width (1 to 4)."""
    half = (high - low) / 2
    if not math.isfinite(half) or half <= 0:
        return 4
    return int(min(4, max(1, 1 - math.floor(math.log10(half)))))


def shown(value: float, low: float, high: float) -> str:
    """`0.86 [0.83, 0.88]`: a value and its interval, rounded to what the interval supports."""
    if not all(math.isfinite(v) for v in (value, low, high)):
        return "" if not math.isfinite(value) else f"{value:.4g}"
    d = decimals(low, high)
    return f"{value:.{d}f} [{low:.{d}f}, {high:.{d}f}]"


def signed(interval: Interval) -> str:
    d = decimals(interval.low, interval.high)
    return f"{interval.value:+.{d}f} [{interval.low:+.{d}f}, {interval.high:+.{d}f}]"


def _scores_by_trial(scores: pd.DataFrame) -> dict[tuple[str, str], pd.DataFrame]:
    """Per-image scores by (sweep, trial_id); the sweep is '' where the scores do not name it."""
    if not len(scores):
        return {}
    sweep = scores["sweep"].astype(str) if "sweep" in scores.columns else pd.Series("", index=scores.index)
    return {(str(s), str(t)): g for (s, t), g in scores.groupby([sweep, scores["trial_id"].astype(str)], sort=False)}


def _key(row: pd.Series, scores: pd.DataFrame) -> tuple[str, str]:
    return (str(row["sweep"]) if "sweep" in scores.columns else "", str(row["trial_id"]))


def with_intervals(board: pd.DataFrame, scores: pd.DataFrame) -> pd.DataFrame:
    """The board with `test_auroc_low/_high` and `test_auprc_low/_high` for every row whose per-image test
    scores are stored (NaN otherwise)."""
    groups = _scores_by_trial(scores)
    columns: dict[str, list[float]] = {f"{m}_{end}": [] for m in INTERVAL_METRICS for end in ("low", "high")}
    for _, row in board.iterrows():
        table = groups.get(_key(row, scores))
        found = bootstrap(table["label"].to_numpy(), table["score"].to_numpy(float)) if table is not None else {}
        for metric in INTERVAL_METRICS:
            interval = found.get(metric.removeprefix("test_"))
            columns[f"{metric}_low"].append(interval.low if interval else math.nan)
            columns[f"{metric}_high"].append(interval.high if interval else math.nan)
    return board.assign(**columns)


def compare(a: pd.Series, b: pd.Series, scores: pd.DataFrame) -> Interval | None:
    """Paired bootstrap of test AUROC(a) - AUROC(b) over the test images both have scores for; None without them."""
    groups = _scores_by_trial(scores)
    first, second = groups.get(_key(a, scores)), groups.get(_key(b, scores))
    if first is None or second is None:
        return None
    both = first[["image_id", "label", "score"]].merge(second[["image_id", "score"]], on="image_id", suffixes=("_a", "_b"))
    if both["label"].nunique() < 2:
        return None
    return paired_difference(both["label"].to_numpy(), both["score_a"].to_numpy(float), both["score_b"].to_numpy(float))


def expected_max(values: np.ndarray, n_max: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Expected best value of n trials drawn (with replacement) from these trials' values, n = 1..n_max, and its
    standard deviation (Dodge et al. 2019, "Show your work"): with v_(1) <= ... <= v_(N),
    E[max_n] = sum_i v_(i) [(i/N)^n - ((i-1)/N)^n]. Returns (n, mean, sd)."""
    v = np.sort(np.asarray(values, dtype=float)[np.isfinite(values)])
    if not len(v):
        empty = np.array([])
        return empty.astype(int), empty, empty
    n = np.arange(1, (n_max or len(v)) + 1)
    cdf = np.arange(len(v) + 1) / len(v)
    weights = cdf[None, 1:] ** n[:, None] - cdf[None, :-1] ** n[:, None]
    mean = weights @ v
    sd = np.sqrt(np.maximum(weights @ v**2 - mean**2, 0.0))
    return n, mean, sd


def ranking_with_intervals(ranking: Ranking, scores: pd.DataFrame) -> Ranking:
    """The same ranking with every board's rows carrying their test AUROC/AUPRC intervals."""
    return replace(ranking, boards={key: with_intervals(board, scores) for key, board in ranking.boards.items()})


def name_of(row: pd.Series) -> str:
    """A classical row by its model, any other as sweep/trial."""
    return str(row["model"]) if role_of(row.get("role")) is Role.FLOOR else f"{row['sweep']}/{row['trial_id']}"


def judgement(difference: Interval | None, name: str) -> str:
    """'beats X' only where the paired interval of the AUROC difference excludes 0."""
    if difference is None:
        return f"no paired test scores to compare with {name}"
    figures = f"test AUROC difference {signed(difference)}"
    if difference.low > 0:
        return f"beats {name}: {figures}"
    if difference.high < 0:
        return f"is beaten by {name}: {figures}"
    return f"is not distinguishable from {name}: {figures} (the interval contains 0)"


def comparisons(board: pd.DataFrame, chosen: pd.Series, scores: pd.DataFrame) -> list[tuple[str, pd.Series, Interval | None]]:
    """The chosen row against (a) the best classical baseline on this board and (b) the row ranked just below it:
    (what it is, that row, the paired interval of test AUROC(chosen) - AUROC(that row))."""
    out = []
    classical = board[having(board["role"], Role.FLOOR) & (board["trial_id"] != chosen["trial_id"])]
    if len(classical):
        out.append(("the best baseline", classical.iloc[0]))
    below = board[board["rank"] > chosen["rank"]]
    if len(below):
        out.append((f"rank {int(below.iloc[0]['rank'])}", below.iloc[0]))
    return [(what, row, compare(chosen, row, scores)) for what, row in out]
