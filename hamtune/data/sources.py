"""The forms HAM10000 comes in, detected from what the user points at, loaded to one canonical table."""

from __future__ import annotations

from pathlib import Path

from hamtune.data import dermamnist, hmnist, isic2018, release
from hamtune.data.loader import Loader, Source
from hamtune.errors import HamtuneError

LOADERS: dict[str, Loader] = {
    "release": release.load, "hmnist": hmnist.load, "dermamnist": dermamnist.load, "isic2018": isic2018.load,
}


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
    source = LOADERS[detect(src)](src, skip_missing=skip_missing, metadata=metadata)
    if source.table.empty:
        raise HamtuneError(f"{src}: no images left to prepare")
    return source
