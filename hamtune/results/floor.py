"""The honest floor: a deep trial that learned nothing a non-learned method does not already do is flagged.

Computed at ranking time from the rows on one leaderboard, so it holds for results written before it
existed. A deep row is flagged when (a) its validation reconstruction is no better than the blur baseline's
(neither a lower val_mse nor a higher val_ssim than the blur row ranked first on validation), or (b) its
validation objective does not beat the best classical baseline's (the classical row ranked first).
Both need the baselines on the same leaderboard: `hamtune baselines` on the same data and split.
"""

from __future__ import annotations

import math

import pandas as pd

from hamtune.results.numbers import fmt
from hamtune.results.roles import Role, having

BLUR = "blur"


def _finite(row: pd.Series, column: str) -> float | None:
    value = pd.to_numeric(pd.Series([row.get(column)]), errors="coerce").iloc[0]
    return float(value) if math.isfinite(value) else None


def reconstructs_no_better(row: pd.Series, blur: pd.Series) -> bool:
    """Neither val_mse lower nor val_ssim higher than the blur's (unknown values never flag)."""
    pairs = [(_finite(row, c), _finite(blur, c)) for c in ("val_mse", "val_ssim")]
    (mse, blur_mse), (ssim, blur_ssim) = pairs
    if mse is None or blur_mse is None or ssim is None or blur_ssim is None:
        return False
    return mse >= blur_mse and ssim <= blur_ssim


def floor_flags(board: pd.DataFrame, deep: pd.Series, column: str, higher_is_better: bool) -> pd.Series:
    """Per row of a board sorted best first by `column` (a validation metric): why a deep row is below the floor,
    or None. Classical rows are never flagged."""
    flags = pd.Series(None, index=board.index, dtype=object)
    classical = board[having(board["role"], Role.FLOOR)]
    if not len(classical):
        return flags
    family = classical["baseline"] if "baseline" in classical.columns else pd.Series(None, index=classical.index)
    blurs = classical[family == BLUR]
    blur = blurs.iloc[0] if len(blurs) else None
    best = classical.iloc[0]
    best_value = _finite(best, column) if column.startswith("val_") else None
    for index, row in board[deep].iterrows():
        reasons = []
        if blur is not None and reconstructs_no_better(row, blur):
            reasons.append(
                f"reconstructs no better than {blur['model']} ({blur.get('baseline_setting') or 'blur'}: val_mse "
                f"{fmt(row['val_mse'])} vs {fmt(blur['val_mse'])}, val_ssim {fmt(row['val_ssim'])} vs {fmt(blur['val_ssim'])})"
            )
        value = _finite(row, column)
        if best_value is not None and value is not None and not (value > best_value if higher_is_better else value < best_value):
            reasons.append(f"{column} {fmt(value)} does not beat {best['model']} ({fmt(best_value)})")
        flags[index] = "; ".join(reasons) or None
    return flags
