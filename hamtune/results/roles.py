"""What a row of a results folder is, as a type: a searched trial, a notebook baseline, an ensemble of deep trials or
a non-deep floor. Tables and chosen.json keep the label `kind: name` (`classical: pca-64`, '' for a searched trial);
code asks this module what a label is, so the label's spelling lives here only."""

from __future__ import annotations

from enum import Enum

import pandas as pd


class Role(Enum):
    SEARCH = ""  # trained by the search or its confirm stage (whose rows have stage == "confirm")
    BASELINE = "baseline"  # the notebook's configurations (the seed presets)
    ENSEMBLE = "ensemble"  # an ensemble of deep trials (seeds of one configuration, or the top k)
    FLOOR = "classical"  # a model that is not a deep autoencoder: PCA, blur, resampling, Isolation Forest, k-NN


def label(role: Role, name: str) -> str:
    """The label a table shows for a row of this role and name."""
    return "" if role is Role.SEARCH else f"{role.value}: {name}"


def labels(role: Role, names: pd.Series) -> pd.Series:
    return names.astype(str).map(lambda name: label(role, name))


def role_of(text: object) -> Role:
    """The role of a label ('' or absent: a searched trial)."""
    kind = str(text or "").partition(":")[0]
    return next((r for r in Role if r is not Role.SEARCH and r.value == kind), Role.SEARCH)


def role_name(text: object) -> str:
    """The name in a label: 'pca-64' for 'classical: pca-64'."""
    return str(text or "").partition(":")[2].strip()


def having(column: pd.Series, *roles: Role) -> pd.Series:
    """Which rows of a role column are of one of `roles`."""
    return column.map(role_of).isin(roles)
