"""The data a results folder was trained on (for reproduce, ensemble, stress and the floor): the prepared caches its
trials name, refused unless their fingerprints match what the sweep was trained on."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from hamtune.data.prepare import Prepared, load_prepared
from hamtune.errors import HamtuneError

MOVED = "point --data at the moved prepared cache"


def checked_data(path: Path | None, fingerprint: str | None, what: str, fix: str = MOVED) -> Prepared:
    """The prepared cache a trial used, refused unless it is byte for byte the data the trial saw (`fix`: what to do
    when it is not there, for commands that have no --data)."""
    if path is None:
        raise HamtuneError(f"trials.parquet names no {what} folder; {fix} ({fingerprint})")
    path = Path(path)
    if not (path / "manifest.json").exists():
        raise HamtuneError(f"{what} {path} is missing (expected fingerprint {fingerprint}, found none); {fix}")
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
        raise HamtuneError(
            f"the chosen trials ran on different data ({column}: {', '.join(map(str, values))}); reproduce them one sweep at a time"
        )
    return values[0] if len(values) else None


def sweep_data(rows: pd.DataFrame, data: Path | None, test_data: Path | None, fix: str = MOVED) -> tuple[Prepared, Prepared | None]:
    """The main (and external test) data of the chosen trials, fingerprint-checked."""
    main = checked_data(data or _one(rows, "data_path"), _one(rows, "data_fingerprint"), "data", fix)
    test_path = test_data or _one(rows, "test_path")
    test = checked_data(test_path, _one(rows, "test_data_fingerprint"), "test data", fix) if test_path else None
    return main, test
