"""The report's internal-vs-external table: the same model on the split's own test images and on an external test
set, side by side with the drop (results.external)."""

from __future__ import annotations

from collections.abc import Callable
from html import escape

import pandas as pd

from hamtune.results.intervals import shown
from hamtune.results.rank import Ranking

NOTE = (
    "The same configuration, seed and training data, tested on the split's own test images (internal) and on an "
    "external test set from --test-data. With an external test set the main data keeps no test part, so the two "
    "runs trained on slightly different images; the drop is external minus internal, two measurements on different "
    "images (not paired). Intervals are 95% bootstrap intervals of each test set's own images."
)


def _value(row: pd.Series, column: str, side: str) -> str:
    value, low, high = (row.get(f"{column}{end}_{side}") for end in ("", "_low", "_high"))
    return shown(value, low, high) if pd.notna(low) and pd.notna(high) else f"{value:.4g}"


def section(pairs: pd.DataFrame, ranking: Ranking, table: Callable[[pd.DataFrame], str]) -> str:
    """The section's HTML ('' without a model measured on both kinds of test set)."""
    if not len(pairs):
        return ""
    column = ranking.metric.column
    shown_pairs = pd.DataFrame(
        {
            "model": [
                f"{r['sweep_internal']}/{r['trial_id_internal']}" + (f" ({r['role_internal']})" if r["role_internal"] else "")
                for _, r in pairs.iterrows()
            ],
            "internal test set": pairs["test_key_internal"],
            f"internal {column}": [_value(r, column, "internal") for _, r in pairs.iterrows()],
            "external test set": pairs["test_key_external"],
            f"external {column}": [_value(r, column, "external") for _, r in pairs.iterrows()],
            "external - internal": [f"{d:+.3f}" for d in pairs["drop"]],
        },
        dtype=object,
    )
    return f'<p class="note">{escape(NOTE)}</p>' + table(shown_pairs)
