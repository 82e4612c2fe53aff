"""Internal vs external: the same model measured on its split's own test images and on an external test set
(`--test-data`), side by side, with the drop between them.

Two rows are the same model when they trained the same configuration (model and optimisation fields, protocol,
input size, seed) on the same data (its fingerprint); an ensemble is the same when its members are. With an
external test set the main data keeps no test part, so the two runs' training and validation images differ a
little: the drop is a difference of two measurements, not a paired one. The split's own interval covers resampling
of the split's test images only, not a change of source: the external figure is the one that speaks for another
clinic.
"""

from __future__ import annotations

import json

import pandas as pd

from hamtune.config_fields import GROUPS
from hamtune.results.rank import Ranking, is_deep

# what the model learned from: its configuration, the input it saw and the data (not where the split's own test part
# lay: an external test set changes that)
IDENTITY = (
    *GROUPS["model"],
    *GROUPS["optimisation"],
    *("protocol", "image_size", "crop", "channels", "seed", "preset"),
    "model",  # not a baseline's setting: validation chose it, and differs
    "data_fingerprint",
)


def is_external(rows: pd.DataFrame) -> pd.Series:
    """Rows measured on an external test set (their test images came from --test-data)."""
    column = rows["test_data_fingerprint"] if "test_data_fingerprint" in rows.columns else pd.Series(None, index=rows.index)
    return column.notna() & column.astype(str).ne("")


def _plain(value):
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value.item() if hasattr(value, "item") else value


def identities(rows: pd.DataFrame) -> pd.Series:
    """What makes two rows the same model, as text (an ensemble: its members' identities)."""
    own = {i: json.dumps([_plain(row.get(k)) for k in IDENTITY], default=str) for i, row in rows.iterrows()}
    by_trial = {(str(rows.at[i, "sweep"]), str(rows.at[i, "trial_id"])): text for i, text in own.items()}
    out = {}
    for i, row in rows.iterrows():
        members = row.get("members")
        if isinstance(members, str) and members:
            source = row.get("members_from") if isinstance(row.get("members_from"), str) else row["sweep"]
            found = sorted(by_trial.get((str(source), m), m) for m in members.split(","))
            out[i] = json.dumps(["ensemble", _plain(row.get("model")), found])
        else:
            out[i] = own[i]
    return pd.Series(out, dtype=object).reindex(rows.index)


def side_by_side(ranking: Ranking) -> pd.DataFrame:
    """One row per model measured on both an internal and an external test set (the best-ranked row of each side
    where a model was measured more than once): both test sets, the reported metric (and its interval) on each, and
    the drop (external - internal). Empty where the results hold no such pair."""
    column = ranking.metric.column
    ranked = ranking.ranked
    if not len(ranked):
        return pd.DataFrame()
    ranked = ranked.assign(identity=identities(ranked), external=is_external(ranked).to_numpy())
    keep = [
        "identity",
        "sweep",
        "trial_id",
        "role",
        "test_key",
        column,
        *(c for c in (f"{column}_low", f"{column}_high") if c in ranked.columns),
    ]
    inside = ranked[~ranked["external"]][keep].drop_duplicates("identity")
    outside = ranked[ranked["external"]][keep].drop_duplicates("identity")
    if not len(inside) or not len(outside):
        return pd.DataFrame()
    both = inside.merge(outside, on="identity", suffixes=("_internal", "_external"))
    both["drop"] = both[f"{column}_external"].astype(float) - both[f"{column}_internal"].astype(float)
    return both.drop(columns="identity").reset_index(drop=True)


def claim_basis(ranking: Ranking, pairs: pd.DataFrame) -> str:
    """Which test set the headline (the first leaderboard's verdict) rests on, and the delivered model's figure on
    the other kind of test set; '' where the results hold only one kind."""
    if not len(pairs):
        return ""
    column = ranking.metric.column
    first_key, board = next(iter(ranking.boards.items()))
    external = bool(is_external(board.head(1)).iloc[0]) if len(board) else False
    kind = "an external test set (images from another source)" if external else "the split's own test images (internal)"
    text = f"The headline above rests on {first_key}: {kind}."
    side, other = ("external", "internal") if external else ("internal", "external")
    deep = board[is_deep(board)]
    best = (deep if len(deep) else board).iloc[0]  # the model the headline names
    mine = pairs[(pairs[f"sweep_{side}"] == str(best["sweep"])) & (pairs[f"trial_id_{side}"] == str(best["trial_id"]))]
    if len(mine):
        row = mine.iloc[0]
        text += (
            f" The same model scores {column} {row[f'{column}_{other}']:.3f} on {row[f'test_key_{other}']} "
            f"({side} {row[f'{column}_{side}']:.3f}; external - internal {row['drop']:+.3f})."
        )
    if not external:
        text += (
            " Its interval covers resampling of the split's own test images, not a change of source: for another "
            "clinic, quote the external figure (internal vs external, side by side, below)."
        )
    return text
