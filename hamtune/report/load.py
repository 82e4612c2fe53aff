"""The sweeps a report covers: results folders read once, validated, and combined into three frames."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from hamtune.errors import HamtuneError, first_line
from hamtune.results.layout import REPRODUCE, TRIALS
from hamtune.results.rank import RANKED_STATUSES
from hamtune.results.store import load_results, read_distributions, read_parquet

REQUIRED = ("trial_id", "status")
log = logging.getLogger(__name__)


@dataclass
class Sweep:
    """One results folder: its trials, per-epoch history, per-image test scores and optional reproduction runs."""

    name: str
    directory: Path
    trials: pd.DataFrame
    epochs: pd.DataFrame
    scores: pd.DataFrame
    reproduce: pd.DataFrame | None = None
    distributions: dict[str, str] = field(default_factory=dict)  # the space's declared ones (Optuna JSON)


def discover(root: Path = Path("results")) -> list[Path]:
    """Every sweep folder under `root` with a trials file (what a bare `python -m hamtune.report` covers)."""
    folders = sorted(path.parent for path in Path(root).glob(f"*/{TRIALS}"))
    if not folders:
        raise HamtuneError(f"{root}: no sweep results found (no */{TRIALS}); run a sweep or name a results folder")
    return folders


def _expand(folder: Path) -> list[Path]:
    """A results root (a folder of sweep folders) stands for the sweeps in it."""
    if folder.is_dir() and not (folder / TRIALS).exists() and any(folder.glob(f"*/{TRIALS}")):
        return discover(folder)
    return [folder]


def _ranked_count(trials: pd.DataFrame) -> int:
    return int(trials["status"].isin(RANKED_STATUSES).sum())


def load_sweep(directory: Path) -> Sweep:
    directory = Path(directory)
    trials, epochs, scores = load_results(directory)
    missing = [c for c in REQUIRED if c not in trials.columns]
    if missing:
        raise HamtuneError(f"{directory / TRIALS}: not a hamtune trials file (no {', '.join(missing)} column)")
    if "sweep" not in trials.columns:
        trials = trials.assign(sweep=directory.name)
    trials["sweep"] = trials["sweep"].fillna(directory.name).astype(str)
    twice = trials["trial_id"].duplicated()
    if twice.any():
        raise HamtuneError(
            f"{directory / TRIALS}: trial {trials['trial_id'][twice].iloc[0]} appears twice in this one "
            "file (was it edited or concatenated?); keep one row per trial"
        )
    reproduce = read_parquet(directory / REPRODUCE) if (directory / REPRODUCE).exists() else None
    name = str(trials["sweep"].iloc[0]) if len(trials) else directory.name
    return Sweep(name, directory, trials, epochs, scores, reproduce, read_distributions(directory))


def _no_ranked_trials(sweep: Sweep) -> str:
    if not len(sweep.trials):
        return f"{sweep.directory}: {TRIALS} holds no trials"
    counts = sweep.trials["status"].value_counts()
    summary = ", ".join(f"{n} {status}" for status, n in counts.items())
    reasons = sweep.trials["reason"].dropna() if "reason" in sweep.trials.columns else pd.Series(dtype=str)
    first = f"; first reason: {first_line(reasons.iloc[0], 160)}" if len(reasons) else ""
    return f"{sweep.directory}: no completed or stopped trials to rank ({summary}{first})"


def load_sweeps(directories: list[Path] | None, root: Path = Path("results")) -> list[Sweep]:
    """Named folders must each hold a rankable trial; discovered ones without any are skipped with a note."""
    named = bool(directories)
    folders = [f for d in directories or () for f in _expand(Path(d))] if named else discover(root)
    folders = list(dict.fromkeys(f.resolve() for f in folders))
    sweeps = []
    for folder in folders:
        sweep = load_sweep(folder)
        if _ranked_count(sweep.trials) == 0:
            if named and len(folders) == 1:
                raise HamtuneError(_no_ranked_trials(sweep))
            log.info("note: skipping %s", _no_ranked_trials(sweep), extra={"stderr": True})
            continue
        sweeps.append(sweep)
    if not sweeps:
        where = ", ".join(map(str, folders)) if named else str(root)
        raise HamtuneError(f"{where}: none of these sweeps has a completed or stopped trial to rank")
    return sweeps


def combine(sweeps: list[Sweep]) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """All trials, epochs and scores in one frame each; (sweep, trial_id) identifies a trial across folders."""
    trials = pd.concat([s.trials for s in sweeps if len(s.trials)], ignore_index=True)
    duplicated = trials.duplicated(["sweep", "trial_id"])
    if duplicated.any():
        first = trials[duplicated].iloc[0]
        raise HamtuneError(f"trial {first['trial_id']} of sweep {first['sweep']!r} appears in two results folders")
    frames = []
    for attribute in ("epochs", "scores"):
        parts = [_with_sweep(getattr(s, attribute), s) for s in sweeps]
        parts = [p for p in parts if len(p)]
        frames.append(pd.concat(parts, ignore_index=True) if parts else pd.DataFrame(columns=["sweep", "trial_id"]))
    return trials, frames[0], frames[1]


def _with_sweep(frame: pd.DataFrame, sweep: Sweep) -> pd.DataFrame:
    """Older rows may lack the sweep column; the trial's sweep name is the folder's."""
    if not len(frame):
        return frame
    names = sweep.trials.set_index("trial_id")["sweep"]
    return frame.assign(sweep=frame["trial_id"].map(names).astype(str))
