"""What is ranked against what: metric direction, one ranking per test set, best per group, baselines,
and the top trials of a results folder (what `reproduce` retrains and `export` writes).

Trials measured on different test sets are never ranked together; diverged and failed trials (and
trials without a value of the metric) are listed apart with their reason, never ranked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.errors import HamtuneError, UsageError
from hamtune.results.floor import floor_flags
from hamtune.results.roles import Role, having, labels
from hamtune.results.store import load_results

RANKED_STATUSES = ("completed", "stopped")
HIGHER = frozenset({"auroc", "auprc", "f1", "precision", "recall", "psnr", "ssim", "elbo"})
LOWER = frozenset({"mse", "loss", "time"})
BASELINE_PRESETS = ("seed-ae", "seed-vae")
DEEP_KINDS = ("ae", "vae")
ENSEMBLE = "ensemble"  # the kind of an ensemble's row
DEFAULT_GROUPS = ("kind", "arch", "rebalance")
UNKNOWN_TEST_SET = "unknown test set"


@dataclass(frozen=True)
class Metric:
    """A trials column and whether larger values are better."""

    column: str
    higher_is_better: bool

    @property
    def mode(self) -> str:
        return "max" if self.higher_is_better else "min"

    @property
    def label(self) -> str:
        return f"{self.column} ({'higher' if self.higher_is_better else 'lower'} is better)"

    def better(self, a: float, b: float) -> bool:
        return a > b if self.higher_is_better else a < b


def direction(column: str) -> bool | None:
    """True when higher is better, False when lower is, None when the name does not say."""
    tokens = set(column.lower().split("_"))
    if tokens & HIGHER:
        return True
    if tokens & LOWER:
        return False
    return None


def resolve_metric(name: str, trials: pd.DataFrame) -> Metric:
    """`auroc` means `test_auroc`; a name must be a numeric column with a known direction."""
    for column in (name, f"test_{name}"):
        if column in trials.columns and direction(column) is not None and pd.api.types.is_numeric_dtype(trials[column]):
            return Metric(column, bool(direction(column)))
    choices = [c for c in trials.columns if c.startswith("test_") and direction(c) is not None and "_score_" not in c]
    if not choices:
        raise HamtuneError(f"no trial recorded {name}: {no_ranked_trials(trials)}")
    raise UsageError(f"unknown metric {name!r}; choose one of {', '.join(choices)}")


def with_test_set(trials: pd.DataFrame) -> pd.DataFrame:
    """Adds `test_key`: the test set's name and fingerprint, the unit within which trials are comparable. Rows with
    one fingerprint are one test set, whatever their names (a cache prepared again under another name): the
    first name stands for them all."""
    names = trials["test_set"] if "test_set" in trials.columns else pd.Series(None, index=trials.index, dtype=object)
    prints = trials["test_fingerprint"] if "test_fingerprint" in trials.columns else pd.Series(None, index=trials.index, dtype=object)
    first: dict[str, str] = {}
    for n, f in zip(names, prints):
        if isinstance(f, str) and f and isinstance(n, str) and n:
            first.setdefault(f, n)
    names = [first.get(f, n) if isinstance(f, str) else n for n, f in zip(names, prints)]
    keys = [
        (str(n) if isinstance(n, str) and n else UNKNOWN_TEST_SET) + (f" ({f[:8]})" if isinstance(f, str) and f else "")
        for n, f in zip(names, prints)
    ]
    return trials.assign(test_key=keys)


def role(trials: pd.DataFrame) -> pd.Series:
    """'baseline: seed-ae' for the notebook's configs, 'classical: pca' for non-deep models, 'ensemble: ensemble-top3'
    for ensembles of deep trials, '' otherwise."""
    out = pd.Series("", index=trials.index, dtype=object)
    if "model" in trials.columns:
        kind = trials["kind"] if "kind" in trials.columns else pd.Series(None, index=trials.index)
        named = trials["model"].notna() & ~kind.isin(DEEP_KINDS)
        ensembles = named & (kind == ENSEMBLE)
        out[ensembles] = labels(Role.ENSEMBLE, trials.loc[ensembles, "model"])
        out[named & ~ensembles] = labels(Role.FLOOR, trials.loc[named & ~ensembles, "model"])
    if "preset" in trials.columns:
        seeded = trials["preset"].isin(BASELINE_PRESETS)
        out[seeded] = labels(Role.BASELINE, trials.loc[seeded, "preset"])
    return out


def split_ranked(trials: pd.DataFrame, metric: Metric) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(rankable trials, the others with a `why` column): only finished trials with a finite metric rank."""
    trials = with_test_set(trials).assign(role=role(trials))
    value = pd.to_numeric(trials[metric.column], errors="coerce")
    finished = trials["status"].isin(RANKED_STATUSES)
    rankable = finished & np.isfinite(value.astype(float))
    others = trials[~rankable].copy()
    reason = others["reason"] if "reason" in others.columns else pd.Series(None, index=others.index, dtype=object)
    others["why"] = [
        str(r) if isinstance(r, str) and r else (f"no {metric.column} value" if s in RANKED_STATUSES else s)
        for r, s in zip(reason, others["status"])
    ]
    return trials[rankable].copy(), others


def leaderboards(ranked: pd.DataFrame, metric: Metric) -> dict[str, pd.DataFrame]:
    """One ranking per test set (best first, with a 1-based `rank` and the `floor` flag of results.floor), the
    largest test set's ranking first."""
    boards = {}
    for key, group in ranked.groupby("test_key", sort=False):
        board = group.sort_values([metric.column, "trial_id"], ascending=[not metric.higher_is_better, True], kind="stable")
        board = confirmed_first(board, metric)
        board = board.assign(rank=np.arange(1, len(board) + 1)).reset_index(drop=True)
        boards[str(key)] = board.assign(floor=floor_flags(board, is_deep(board), metric.column, metric.higher_is_better))
    return dict(sorted(boards.items(), key=lambda item: -len(item[1])))


def ensemble_of(trials: pd.DataFrame, members) -> pd.DataFrame:
    """The ensemble rows built from the trials `members` (a configuration's seeds): all of them, or those best on
    validation (`train --keep`, `confirm: keep`); an ensemble of all of them first."""
    if "members" not in trials.columns:
        return trials.iloc[0:0]
    wanted = set(map(str, members))
    built = trials["members"].map(lambda m: set(str(m).split(",")) if isinstance(m, str) and m else set())
    found = trials[built.map(lambda m: len(m) >= 2 and m <= wanted)]
    return found.loc[sorted(found.index, key=lambda i: built[i] != wanted)]


def confirmed_first(board: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Where configurations were measured on 2+ seeds (a confirm stage, `reproduce`), the chosen row is the
    configuration with the best MEAN validation objective, not the luckiest single seed: its seed ensemble when one
    was delivered (members = exactly its seeds), else its best seed. That row goes first; the rest keep their order.
    A ranking on a test metric is left as it is (it chooses nothing)."""
    if not metric.column.startswith("val_") or "config_id" not in board.columns:
        return board
    seeds = board[board["kind"].isin(DEEP_KINDS) & board["config_id"].notna()]
    values = seeds.groupby("config_id")[metric.column]
    means = values.mean()[values.size() >= 2]
    if means.empty:
        return board
    best = means.idxmax() if metric.higher_is_better else means.idxmin()
    mine = seeds[seeds["config_id"] == best]
    delivered = ensemble_of(board, mine["trial_id"])
    pick = delivered.index[0] if len(delivered) else mine.index[0]
    return board.loc[[pick, *(i for i in board.index if i != pick)]]


@dataclass(frozen=True)
class Ranking:
    """Trials ordered by `select` (a board per test set) with `metric` reported beside it, and the trials
    that are not ranked. Honest rankings select on validation and report test; one that selects on a
    test metric is optimistic (a user without test labels could not have chosen that way)."""

    metric: Metric
    boards: dict[str, pd.DataFrame]
    unranked: pd.DataFrame
    select: Metric

    @property
    def ranked(self) -> pd.DataFrame:
        return pd.concat(self.boards.values(), ignore_index=True)

    @property
    def optimistic(self) -> bool:
        return not self.select.column.startswith("val_")

    @property
    def label(self) -> str:
        chosen = "optimistic: chosen on test labels" if self.optimistic else "chosen on validation"
        return f"ranked by {self.select.label} ({chosen}), reporting {self.metric.label}"


def rank(trials: pd.DataFrame, metric: Metric, select: Metric | None = None) -> Ranking:
    """Rank by `select` (default: `metric` itself) and report `metric`."""
    select = select or metric
    ranked, unranked = split_ranked(trials, select)
    if not len(ranked):
        raise HamtuneError(f"no finished trial has a {select.column} value to rank by; try another --rank-by")
    return Ranking(metric, leaderboards(ranked, select), unranked, select)


def best_per_group(board: pd.DataFrame, by: tuple[str, ...]) -> pd.DataFrame:
    """The top-ranked trial of every combination of `by` (a board is already sorted best first)."""
    columns = [c for c in by if c in board.columns]
    if not columns:
        return board.head(1)
    return board.groupby(columns, dropna=False, sort=False).head(1).reset_index(drop=True)


def parse_groups(text: str | None, trials: pd.DataFrame) -> tuple[str, ...]:
    """`--by kind,arch`: known columns only (the defaults quietly drop the ones a sweep lacks)."""
    if text is None:
        return DEFAULT_GROUPS
    columns = tuple(c.strip() for c in text.split(",") if c.strip())
    unknown = [c for c in columns if c not in trials.columns]
    if unknown or not columns:
        raise UsageError(f"--by {text!r}: unknown column(s) {', '.join(unknown) or '(none given)'}; e.g. kind,arch,rebalance")
    return columns


def is_deep(board: pd.DataFrame) -> pd.Series:
    """Deep models: searched trials, the notebook's configs and ensembles of deep trials."""
    return having(board["role"], Role.SEARCH, Role.BASELINE, Role.ENSEMBLE)


def search_trials(frame: pd.DataFrame) -> pd.DataFrame:
    """The search's own draws: searched deep trials, without baselines, ensembles, classical rows and the confirm
    stage's extra seeds (what the search plots and the expected-best curve are about)."""
    roles = frame["role"] if "role" in frame.columns else role(frame)
    keep = having(roles, Role.SEARCH)
    if "kind" in frame.columns:
        keep &= frame["kind"].isin(DEEP_KINDS)
    if "stage" in frame.columns:
        keep &= frame["stage"].ne("confirm")
    return frame[keep]


@dataclass(frozen=True)
class Verdict:
    """Which model is best on one test set and how it compares with the baselines."""

    test_key: str
    n_ranked: int
    best: pd.Series  # best deep model (notebook baselines included); the best row of any kind when there is none
    best_searched: pd.Series | None  # best deep model that is not a notebook baseline
    seeds: dict[str, float]  # role -> the value of its top-ranked row, e.g. {"baseline: seed-ae": 0.71}
    classical: dict[str, float]  # role -> the value of its top-ranked row, e.g. {"classical: pca-64": 0.64}
    beats_classical: bool | None  # None when there is no classical baseline
    best_on_metric: pd.Series | None = None  # the deep row with the best reported metric (chosen on it: optimistic)


def verdict(board: pd.DataFrame, key: str, metric: Metric, chosen: pd.Series | None = None) -> Verdict:
    """The chosen model (`chosen`: the row results.chosen records; else the top-ranked deep model, as the board was
    ordered) against the top-ranked row of every baseline, compared on the reported metric."""
    deep = board[is_deep(board)]
    if chosen is not None:
        deep = pd.concat([deep.loc[[chosen.name]], deep.drop(index=chosen.name, errors="ignore")]) if chosen.name in deep.index else deep
    searched = board[having(board["role"], Role.SEARCH)]

    def best_of(role: Role) -> dict[str, float]:
        rows = board[having(board["role"], role)]
        return {str(name): float(group[metric.column].iloc[0]) for name, group in rows.groupby("role", sort=False)}

    values = pd.to_numeric(deep[metric.column], errors="coerce") if len(deep) else pd.Series(dtype=float)
    best_on_metric = None
    if values.notna().any():
        best_on_metric = deep.loc[values.idxmax() if metric.higher_is_better else values.idxmin()]

    classical = best_of(Role.FLOOR)
    beats = None
    if classical:
        values = list(classical.values())
        top = max(values) if metric.higher_is_better else min(values)
        beats = bool(len(deep)) and metric.better(float(deep[metric.column].iloc[0]), top)
    return Verdict(
        key,
        len(board),
        (deep if len(deep) else board).iloc[0],
        searched.iloc[0] if len(searched) else None,
        best_of(Role.BASELINE),
        classical,
        beats,
        best_on_metric,
    )


def objective(trials: pd.DataFrame, metric: str | None = None) -> Metric:
    """The ranking metric: `--metric` when given, else the sweep's own objective from trials.parquet."""
    if metric is not None:
        return resolve_metric(metric, trials)
    if "objective_metric" not in trials.columns or trials["objective_metric"].dropna().empty:
        return resolve_metric("val_auroc", trials)
    column = str(trials["objective_metric"].dropna().mode().iloc[0])
    modes = (
        trials.loc[trials["objective_metric"] == column, "objective_mode"].dropna()
        if "objective_mode" in trials
        else pd.Series(dtype=object)
    )
    mode = str(modes.iloc[0]) if len(modes) else "max"
    if mode not in ("max", "min"):
        raise HamtuneError(
            f"objective_mode {mode!r} in the results: must be max or min (was the trials file edited?); pass --metric to choose the ranking"
        )
    if column not in trials.columns:
        raise HamtuneError(f"no trial recorded {column} (the sweep's objective): {no_ranked_trials(trials)}")
    return Metric(column, mode == "max")


def no_ranked_trials(trials: pd.DataFrame) -> str:
    """Why nothing can be ranked, e.g. "3 failed (first reason: CUDA out of memory); nothing to rank"."""
    statuses = trials["status"].value_counts().to_dict() if "status" in trials else {}
    reasons = [str(r) for r in trials.get("reason", pd.Series(dtype=object)).dropna() if str(r)]
    summary = ", ".join(f"{n} {s}" for s, n in statuses.items()) or f"{len(trials)} trial(s)"
    return f"{summary}" + (f" (first reason: {reasons[0][:120]})" if reasons else "") + "; nothing to rank"


def leaderboard(trials: pd.DataFrame, metric: Metric) -> pd.DataFrame:
    """Completed and stopped trials best first (1-based `rank`), as the report ranks them; one test set only."""
    boards = rank(trials, metric).boards
    return next(iter(boards.values()))


def top_trials(
    directory: Path, top: int, metric: str | None = None, deep: bool = False, configurations: bool = False
) -> tuple[pd.DataFrame, Metric]:
    """The `top` best trials of a results folder and the metric that ranked them; with `deep`, network trials only
    (never a seed ensemble or a baseline row); with `configurations`, the best trial of each configuration (a confirm
    stage's seeds of one configuration count once)."""
    if top < 1:
        raise UsageError(f"--top must be at least 1, got {top}")
    trials = load_results(directory)[0]
    chosen = objective(trials, metric)
    board = leaderboard(trials, chosen)
    if deep and "kind" in board.columns:
        board = board[board["kind"].isin(DEEP_KINDS)].reset_index(drop=True)
    if configurations and "config_id" in board.columns:
        ids = board["config_id"].where(board["config_id"].notna(), board["trial_id"]).astype(str)
        board = board[~ids.duplicated()].reset_index(drop=True)
    return board.head(top), chosen
