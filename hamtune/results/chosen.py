"""The chosen model of a results folder, decided once and recorded once (chosen.json), read by every place that
names "the best model": leaderboard, summary, side-by-side table, methods card, API, export default, trackers
and the Optuna study. The rule is the ranking's (results.rank): on the validation objective; where configurations
were measured on 2+ seeds, the best MEAN over seeds, delivered as its seed ensemble when one was built. Test
metrics are only reported. The chosen model is a deep one when the folder has any; where a baseline or floor row
is better on validation, the record names it too (`best_on_validation`), so a headline can say so.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import pandas as pd

from hamtune.config_fields import FIELDS, WHOLE
from hamtune.errors import HamtuneError, first_line
from hamtune.files import atomic_file, read_text
from hamtune.results.layout import CHOSEN

VERSION = 1
REPORTED = (
    "val_auroc",
    "val_auprc",
    "val_loss",
    "test_auroc",
    "test_auprc",
    "test_f1",
    "test_precision",
    "test_recall",
    "test_mse",
    "test_psnr",
    "test_ssim",
    "threshold",
    "epochs_run",
)


@dataclass(frozen=True)
class Chosen:
    """Which row of trials.parquet is the delivered model, by which rule, and what it is."""

    trial_id: str
    sweep: str
    rule: str  # the choice in words, e.g. "best mean val_auroc over 2+ seeds, delivered as its seed ensemble"
    metric: str  # the validation objective it was chosen on
    mode: str  # "max" | "min"
    kind: str | None  # "ae", "vae", "ensemble", a classical model's kind...
    role: str  # "" (a searched or confirmed trial), "ensemble: ...", "baseline: ...", "classical: ..."
    members: tuple[str, ...] = ()  # an ensemble's member trial ids
    config_id: str | None = None  # the configuration (its seeds share it)
    config: dict = field(default_factory=dict)  # the TrainConfig fields of the model (of its members for an ensemble)
    metrics: dict = field(default_factory=dict)  # its row's metrics (REPORTED), plain floats
    intervals: dict = field(default_factory=dict)  # metric -> [low, high], each inside [0, 1] for AUROC/AUPRC
    seeds: dict = field(default_factory=dict)  # over the configuration's seeds: n, and per metric mean, sd, ci_low, ci_high
    best_on_validation: dict | None = None  # {trial_id, role, value} of a non-deep row better on validation, else None
    test_key: str = ""  # the test set the ranking is on

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)

    def to_dict(self) -> dict:
        return {"version": VERSION, **asdict(self), "members": list(self.members)}

    @classmethod
    def from_dict(cls, data: dict, where: str = CHOSEN) -> Chosen:
        if not isinstance(data, dict) or data.get("version") != VERSION:
            raise HamtuneError(
                f"{where}: not a chosen-model record of version {VERSION}; rerun `hamtune report` on the results folder to record it again"
            )
        known = {f.name for f in fields(cls)}
        try:
            values = {k: v for k, v in data.items() if k in known}
            return cls(**{**values, "members": tuple(str(m) for m in values.get("members") or ())})
        except TypeError as exc:
            raise HamtuneError(f"{where}: {first_line(exc, 200)}") from None


def _plain(value):
    """A Parquet cell as JSON: NaN/None -> None, numpy scalars -> Python."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def typed_config(row: pd.Series) -> dict:
    """The TrainConfig fields of a row with their declared types (Parquet gives an int column with gaps as floats)."""
    out = {}
    for name in FIELDS:
        if name not in row.index:
            continue
        value = _plain(row[name])
        if name in WHOLE and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out


def choose(trials: pd.DataFrame, scores: pd.DataFrame | None = None, metric: str | None = None) -> Chosen:
    """The chosen model of these trials, by the ranking's rule (on validation; confirmed configurations first)."""
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.intervals import INTERVAL_METRICS, with_intervals
    from hamtune.results.rank import DEEP_KINDS, is_deep, objective, rank

    select = objective(trials, metric)
    if not select.column.startswith("val_"):
        raise HamtuneError(f"the objective {select.column} is not a validation metric; a model is only chosen on validation")
    board = next(iter(rank(trials, select).boards.items()))
    test_key, board = board
    deep = board[is_deep(board)]
    row = (deep if len(deep) else board).iloc[0]
    members = tuple(str(m) for m in str(row.get("members")).split(",")) if isinstance(row.get("members"), str) else ()
    seeds = seed_rows(trials[trials["kind"].isin(DEEP_KINDS)]) if "kind" in trials.columns else trials.iloc[0:0]
    described = row
    if members:
        found = trials[trials["trial_id"].astype(str).isin(members)]
        described = found.iloc[0] if len(found) else row
    config_id = _plain(described.get("config_id")) if "config_id" in described.index else None
    config_id = str(config_id) if config_id is not None else (str(row["trial_id"]) if not members else None)
    spread = {}
    if config_id is not None and len(seeds):
        table = per_configuration(seeds, select)
        mine = table[table["config_id"] == config_id]
        if len(mine) and int(mine.iloc[0]["n"]) >= 2:
            spread = {k: _plain(v) for k, v in mine.iloc[0].items() if k.endswith(("_mean", "_sd", "_ci_low", "_ci_high"))}
            spread["n"] = int(mine.iloc[0]["n"])
    if len(seeds) and spread:
        kept = f" of the {len(members)} seeds best on validation" if 2 <= len(members) < spread["n"] else ""
        rule = f"best mean {select.column} over {spread['n']} seeds (configurations on 2+ seeds first)" + (
            f", delivered as its seed ensemble{kept}" if members else ""
        )
    else:
        rule = f"best {select.column} ({'highest' if select.higher_is_better else 'lowest'})"
    intervals = {}
    if scores is not None and len(scores):
        one = with_intervals(board.loc[[row.name]], scores).iloc[0]
        for name in INTERVAL_METRICS:
            low, high = _plain(one.get(f"{name}_low")), _plain(one.get(f"{name}_high"))
            if low is not None and high is not None:
                intervals[name] = [max(0.0, low), min(1.0, high)]
    beaten = None
    others = board[~is_deep(board)]
    if len(deep) and len(others):  # by value: the ranking puts a confirmed choice first whatever its own value
        values = pd.to_numeric(others[select.column], errors="coerce")
        best = others.loc[values.idxmax() if select.higher_is_better else values.idxmin()]
        if select.better(float(best[select.column]), float(row[select.column])):
            beaten = {"trial_id": str(best["trial_id"]), "role": str(best.get("role") or ""), "value": _plain(best[select.column])}
    return Chosen(
        trial_id=str(row["trial_id"]),
        sweep=str(_plain(row.get("sweep")) or ""),
        rule=rule,
        metric=select.column,
        mode="max" if select.higher_is_better else "min",
        kind=_plain(row.get("kind")),
        role=str(row.get("role") or ""),
        members=members,
        config_id=config_id,
        config=typed_config(described),
        metrics={k: _plain(row[k]) for k in REPORTED if k in row.index and _plain(row[k]) is not None},
        intervals=intervals,
        seeds=spread,
        best_on_validation=beaten,
        test_key=str(test_key),
    )


def write_chosen(directory: Path, chosen: Chosen) -> Path:
    """Record the choice in the results folder (atomically: a reader sees the old record or the new one)."""
    path = Path(directory) / CHOSEN
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(chosen.to_dict(), indent=1, default=_plain))
    return path


def record_choice(directory: Path) -> Chosen | None:
    """Decide from the folder's results and record it; None where nothing can be ranked yet. Every command that
    changes trials.parquet calls this last, so the record always describes the rows beside it."""
    from hamtune.results.store import load_results

    trials, _, scores = load_results(Path(directory))
    try:
        chosen = choose(trials, scores)
    except HamtuneError:
        return None
    write_chosen(directory, chosen)
    return chosen


def read_chosen(directory: Path) -> Chosen | None:
    """The recorded choice, or None where the folder has none (a folder written before the record existed)."""
    path = Path(directory) / CHOSEN
    if not path.exists():
        return None
    try:
        data = json.loads(read_text(path, limit=1 << 20))
    except ValueError as exc:
        raise HamtuneError(f"{path}: not JSON ({first_line(exc, 120)}); rerun `hamtune report` on the folder") from None
    return Chosen.from_dict(data, str(path))


def chosen_of(directory: Path) -> Chosen | None:
    """The recorded choice; for an older folder without one (or a record naming a row the folder no longer holds,
    e.g. after its trials file was edited), the same rule applied now (not written: readers never write)."""
    from hamtune.results.layout import TRIALS
    from hamtune.results.store import read_parquet

    recorded = read_chosen(directory)
    if recorded is not None and (Path(directory) / TRIALS).exists():
        trials = read_parquet(Path(directory) / TRIALS)
        if "trial_id" in trials.columns and recorded.trial_id in set(trials["trial_id"].astype(str)):
            return recorded
    from hamtune.results.store import load_results

    trials, _, scores = load_results(Path(directory))
    try:
        return choose(trials, scores)
    except HamtuneError:
        return None


def chosen_in(board: pd.DataFrame, chosen: Iterable[Chosen]) -> tuple[pd.Series, Chosen] | None:
    """The best-ranked row of `board` that one of the folders' records names as its chosen model (a report over
    several folders has one record each), with that record; None where no record names a row here."""
    if not len(board):
        return None
    ids = board["trial_id"].astype(str)
    sweeps = board["sweep"].astype(str) if "sweep" in board.columns else pd.Series("", index=board.index)
    found = []
    for record in chosen:
        hit = (ids == record.trial_id) & ((sweeps == record.sweep) if record.sweep else True)
        if hit.any():
            found.append((board.index.get_loc(hit[hit].index[0]), record))
    if not found:
        return None
    position, record = min(found, key=lambda item: item[0])
    return board.iloc[position], record


def chosen_of_folders(directories: Iterable[Path]) -> list[Chosen]:
    """Each folder's chosen model (chosen_of), the folders without one left out."""
    return [c for c in (chosen_of(Path(d)) for d in directories) if c is not None]
