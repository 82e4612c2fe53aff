"""Canonical diagnosis codes, the label orders each public source uses, and the anomaly protocols."""

from __future__ import annotations

DX_CODES: tuple[str, ...] = ("nv", "mel", "bkl", "bcc", "akiec", "vasc", "df")

# Kaggle hmnist_*.csv `label` column (pinned by counts: label 4 has 6,705 rows = nv).
HMNIST_LABELS: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "nv", "vasc", "mel")
# MedMNIST DermaMNIST labels (alphabetical by long name; NOT the hmnist order).
DERMAMNIST_LABELS: tuple[str, ...] = ("akiec", "bcc", "bkl", "df", "mel", "nv", "vasc")

# HAM10000 class counts of the public release, used to check that a label mapping is plausible.
HAM10000_COUNTS: dict[str, int] = {
    "nv": 6705,
    "mel": 1113,
    "bkl": 1099,
    "bcc": 514,
    "akiec": 327,
    "vasc": 142,
    "df": 115,
}
