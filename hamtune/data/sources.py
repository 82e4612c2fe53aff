"""The forms HAM10000 comes in, detected from what the user points at, loaded to one canonical table."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.images import ImageRef
from hamtune.data.labels import DX_CODES
from hamtune.errors import HamtuneError

log = logging.getLogger("hamtune")

FORMS = ("release", "hmnist", "dermamnist", "isic2018")


@dataclass
class Source:
    """A loaded dataset before decoding: one row per image with canonical dx codes.

    `table` has at least image_id, lesion_id (may be missing), dx; images are either encoded
    (`refs`, one per row) or already decoded (`pixels`, N x H x W x C uint8).
    """

    form: str
    path: Path
    table: pd.DataFrame
    mapping: str
    files: list[Path]
    refs: list[ImageRef] | None = None
    pixels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)
        log.warning(message)


def check_mapping(dx: pd.Series, mapping: str, file: Path) -> None:
    """Refuse a label order that cannot be right: in every HAM10000 subset, nevi are the majority."""
    unknown = sorted(set(dx) - set(DX_CODES))
    if unknown:
        raise HamtuneError(f"{file}: unknown dx {unknown}; expected one of {', '.join(DX_CODES)}")
    counts = dx.value_counts()
    if len(dx) >= 50 and counts.index[0] != "nv":
        raise HamtuneError(
            f"{file}: under the {mapping} label order the most frequent class is {counts.index[0]!r} "
            f"({counts.iloc[0]} of {len(dx)} rows), but nevi (nv) are the majority of HAM10000; "
            "is this file really in that format?"
        )


def detect(src: Path) -> str:
    """Tell which form a file or folder is, from names the public releases use."""
    if not src.exists():
        raise HamtuneError(f"{src}: no such file or folder")
    name = src.name.lower()
    if src.is_file():
        if name.endswith(".npz"):
            return "dermamnist"
        if name.startswith("hmnist_") and name.endswith(".csv"):
            return "hmnist"
        if name.startswith("isic2018_task3") and name.endswith("groundtruth.csv"):
            return "isic2018"
        if name.endswith((".csv", ".tab")):
            header = src.open(encoding="utf-8", errors="replace").readline().lower()
            if "pixel0000" in header:
                return "hmnist"
            if header.startswith("image,") and "mel" in header and "nv" in header:
                return "isic2018"
            return "release"
        raise HamtuneError(f"{src}: not a dataset file I know (.csv, .tab or .npz expected)")
    names = {p.name.lower() for p in src.iterdir()}
    if any(n.startswith("isic2018_task3") for n in names):
        return "isic2018"
    if {"ham10000_metadata.csv", "ham10000_metadata.tab"} & names:
        return "release"
    if any(n.startswith("hmnist_") and n.endswith(".csv") for n in names):
        return "hmnist"
    if any(n.startswith("dermamnist") and n.endswith(".npz") for n in names):
        return "dermamnist"
    raise HamtuneError(
        f"{src}: found no HAM10000 data here; expected HAM10000_metadata.csv (+ image folders or zips), "
        "hmnist_*.csv, dermamnist*.npz or the ISIC2018_Task3_* files"
    )


def load_source(src: Path, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    """Detect the form of `src` and load it to the canonical table."""
    from hamtune.data import dermamnist, hmnist, isic2018, release

    form = detect(src)
    if form == "release":
        source = release.load(src, skip_missing=skip_missing)
    elif form == "hmnist":
        source = hmnist.load(src, metadata=metadata)
    elif form == "dermamnist":
        source = dermamnist.load(src)
    else:
        source = isic2018.load(src, skip_missing=skip_missing, metadata=metadata)
    if source.table.empty:
        raise HamtuneError(f"{src}: no images left to prepare")
    return source


def pick_one(folder: Path, candidates: list[Path], what: str) -> Path:
    """Choose among several files of one form, or ask the user to name one."""
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(sorted(p.name for p in candidates))
    raise HamtuneError(f"{folder}: several {what} files ({names}); pass the one you want as SRC")
