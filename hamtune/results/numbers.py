"""Numbers for people, the same everywhere (terminal tables, the HTML report, model cards)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd


def fmt(value, missing: str = "") -> str:
    """4 significant digits, integers as integers, `missing` for None, NA and NaN."""
    if value is None or value is pd.NA:
        return missing
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        if math.isnan(value):
            return missing
        if float(value).is_integer() and abs(value) < 1e6:
            return str(int(value))
        return f"{value:.4g}"
    return str(value)


def fmt_delta(delta: float, *values: float) -> str:
    """A signed difference to as many decimals as `fmt` shows the numbers it is between (one rounding rule: a gap
    is never shown more precisely than its ends): fmt_delta(0.07312, 0.7543, 0.6812) -> '+0.0731'."""
    if delta is None or not math.isfinite(delta):
        return ""
    places = [len(text.split(".")[1]) if "." in text and "e" not in text else 0 for text in (fmt(v) for v in values)]
    return f"{delta:+.{max(places, default=4)}f}"
