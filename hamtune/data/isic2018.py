"""ISIC 2018 Task 3: image folders or zips plus one-hot ground-truth CSVs per official split."""

from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.loader import Source, check_mapping
from hamtune.data.release import attach_images, index_images, read_metadata
from hamtune.errors import HamtuneError
from hamtune.files import MAX_SOURCE_BYTES, MAX_TEXT_BYTES, check_regular, read_input, read_member

COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
SPLIT_NAMES = {"training": "train", "validation": "val", "test": "test"}
MAPPING = "ISIC 2018 Task 3 one-hot columns (MEL, NV, BCC, AKIEC, BKL, DF, VASC -> lower-case dx)"
_GT = re.compile(r"isic2018_task3_(training|validation|test)_groundtruth\.csv$", re.IGNORECASE)


def find_ground_truth(src: Path) -> list[tuple[str, str, bytes]]:
    """Every ground-truth CSV as (split, where, bytes): files in src or one level down, or inside zips."""
    if src.is_file():
        match = _GT.search(src.name)
        split = SPLIT_NAMES[match[1].lower()] if match else "test"
        return [(split, str(src), read_input(src))]
    found: dict[str, tuple[str, str, bytes]] = {}
    for path in sorted(list(src.glob("*.csv")) + list(src.glob("*/*.csv"))):
        match = _GT.search(path.name)
        if match:
            found.setdefault(SPLIT_NAMES[match[1].lower()], (SPLIT_NAMES[match[1].lower()], str(path), read_input(path)))
    for archive in sorted(src.glob("*.zip")):
        if "groundtruth" not in archive.name.lower():
            continue
        check_regular(archive, MAX_SOURCE_BYTES)
        try:
            z = zipfile.ZipFile(archive)
        except zipfile.BadZipFile:
            raise HamtuneError(f"{archive}: not a readable zip file (truncated download?)") from None
        with z:
            for member in z.namelist():
                match = _GT.search(Path(member).name)
                if match:
                    split = SPLIT_NAMES[match[1].lower()]
                    found.setdefault(split, (split, f"{archive}!{member}", _member(archive, z, member)))
    if not found:
        raise HamtuneError(f"{src}: no ISIC2018_Task3_*_GroundTruth.csv found (in the folder, one level down, or in zips)")
    return list(found.values())


def _member(archive: Path, z: zipfile.ZipFile, member: str) -> bytes:
    try:
        return read_member(z, member, MAX_TEXT_BYTES)
    except ValueError as exc:
        raise HamtuneError(f"{archive}: {exc}; refused") from None


def read_ground_truth(where: str, data: bytes) -> pd.DataFrame:
    """One-hot rows to dx codes; a row that is not exactly one-hot is an error naming the line."""
    try:
        frame = pd.read_csv(io.BytesIO(data), dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise HamtuneError(f"{where}: not a readable CSV ({exc})") from None
    frame.columns = [c.strip() for c in frame.columns]
    missing = [c for c in ("image",) + COLUMNS if c not in frame.columns]
    if missing:
        raise HamtuneError(f"{where}: missing column(s) {', '.join(missing)}; expected image,{','.join(COLUMNS)}")
    onehot = frame[list(COLUMNS)].apply(pd.to_numeric, errors="coerce").to_numpy()
    valid = np.isin(onehot, (0.0, 1.0)).all(axis=1) & (np.nansum(onehot, axis=1) == 1)
    if not valid.all():
        row = int(np.flatnonzero(~valid)[0])
        values = ",".join(frame[list(COLUMNS)].iloc[row])
        raise HamtuneError(f"{where}: line {row + 2}: the row for {frame['image'].iloc[row]!r} is not one-hot ({values})")
    dx = [COLUMNS[i].lower() for i in onehot.argmax(axis=1)]
    return pd.DataFrame({"image_id": frame["image"].str.strip(), "dx": dx})


def load(src: Path, *, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    folder = src if src.is_dir() else src.parent
    parts, files = [], []
    for split, where, data in find_ground_truth(src):
        table = read_ground_truth(where, data)
        table["official_split"] = split
        parts.append(table)
        files.append(Path(where.split("!")[0]))
    table = pd.concat(parts, ignore_index=True)
    duplicated = table["image_id"].duplicated()
    if duplicated.any():
        raise HamtuneError(f"{src}: image {table['image_id'][duplicated].iloc[0]!r} appears in two ground-truth files")
    if metadata is None and (folder / "HAM10000_metadata.csv").exists():
        metadata = folder / "HAM10000_metadata.csv"
    table["lesion_id"] = None
    if metadata is not None:
        lesions = read_metadata(metadata).set_index("image_id")["lesion_id"]
        table["lesion_id"] = table["image_id"].map(lesions)
        files.append(metadata)
    images, image_files = index_images(folder)
    table, refs, note = attach_images(table, images, files[0], folder, skip_missing)
    check_mapping(table["dx"], MAPPING, files[0])
    table["source"] = "isic2018"
    source = Source("isic2018", src, table, MAPPING, files + image_files, refs=refs)
    if note:
        source.note(note)
    if table["lesion_id"].isna().all():
        source.note(f"{src}: no lesion ids (pass --metadata HAM10000_metadata.csv): splits of these images are per image")
    return source
