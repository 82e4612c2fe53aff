"""The forms HAM10000 comes in, detected from what the user points at, loaded to one canonical table."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from hamtune.data import dermamnist, hmnist, isic2018, release
from hamtune.data.loader import Loader, Source
from hamtune.errors import HamtuneError
from hamtune.files import check_regular

TABLES = (".csv", ".tab")


def _header(src: Path) -> str:
    check_regular(src, None)  # a FIFO would block the sniff forever
    with src.open(encoding="utf-8", errors="replace") as handle:
        return handle.readline(4096).lower()


def _isic_header(header: str) -> bool:
    return header.startswith("image,") and "mel" in header and "nv" in header


@dataclass(frozen=True)
class Form:
    """One form HAM10000 comes in: how to load it, how to recognise a file or a folder of it, and whether its
    pixels come as arrays (kept at their native size) rather than JPEGs."""

    name: str
    load: Loader
    is_file: Callable[[Path, str], bool]  # (the file, its lowercase name)
    is_folder: Callable[[set[str]], bool]  # the folder's lowercase entry names
    arrays: bool


# In the order files are tried (the release's metadata table is the catch-all CSV, last). A folder is tried in
# FOLDER_ORDER: an ISIC 2018 folder holds HAM10000's metadata too, and Kaggle's HAM10000 download holds the
# release and hmnist_*.csv side by side (the full-size images win).
FORMS: tuple[Form, ...] = (
    Form(
        "dermamnist",
        dermamnist.load,
        lambda src, name: name.endswith(".npz"),
        lambda names: any(n.startswith("dermamnist") and n.endswith(".npz") for n in names),
        arrays=True,
    ),
    Form(
        "hmnist",
        hmnist.load,
        lambda src, name: (name.startswith("hmnist_") and name.endswith(".csv")) or (name.endswith(TABLES) and "pixel0000" in _header(src)),
        lambda names: any(n.startswith("hmnist_") and n.endswith(".csv") for n in names),
        arrays=True,
    ),
    Form(
        "isic2018",
        isic2018.load,
        lambda src, name: (
            (name.startswith("isic2018_task3") and name.endswith("groundtruth.csv"))
            or (name.endswith(TABLES) and _isic_header(_header(src)))
        ),
        lambda names: any(n.startswith("isic2018_task3") for n in names),
        arrays=False,
    ),
    Form(
        "release",
        release.load,
        lambda src, name: name.endswith(TABLES),
        lambda names: bool({"ham10000_metadata.csv", "ham10000_metadata.tab"} & names),
        arrays=False,
    ),
)
FOLDER_ORDER = ("isic2018", "release", "hmnist", "dermamnist")
BY_NAME: dict[str, Form] = {form.name: form for form in FORMS}
LOADERS: dict[str, Loader] = {form.name: form.load for form in FORMS}
ARRAY_FORMS = tuple(form.name for form in FORMS if form.arrays)


def detect(src: Path) -> str:
    """Tell which form a file or folder is, from names the public releases use."""
    if os.path.exists(src) and not os.path.isdir(src):
        check_regular(Path(src), None)  # a FIFO or device is refused here, before anything opens it
    if not src.exists():
        raise HamtuneError(f"{src}: no such file or folder")
    if src.is_file():
        found = next((form.name for form in FORMS if form.is_file(src, src.name.lower())), None)
        if found is None:
            raise HamtuneError(f"{src}: not a dataset file I know (.csv, .tab or .npz expected)")
        return found
    names = {p.name.lower() for p in src.iterdir()}
    found = next((name for name in FOLDER_ORDER if BY_NAME[name].is_folder(names)), None)
    if found is None:
        raise HamtuneError(
            f"{src}: found no HAM10000 data here; expected HAM10000_metadata.csv (+ image folders or zips), "
            "hmnist_*.csv, dermamnist*.npz or the ISIC2018_Task3_* files"
        )
    return found


def load_source(src: Path, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    """Detect the form of `src` and load it to the canonical table."""
    source = LOADERS[detect(src)](src, skip_missing=skip_missing, metadata=metadata)
    if source.table.empty:
        raise HamtuneError(f"{src}: no images left to prepare")
    return source
