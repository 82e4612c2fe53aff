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
