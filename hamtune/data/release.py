"""The original HAM10000 release: metadata CSV/TAB plus JPEG folders or the release's zips."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.images import IMAGE_SUFFIXES, ImageRef
from hamtune.data.labels import DX_CODES
from hamtune.data.loader import Source, check_mapping
from hamtune.errors import HamtuneError
from hamtune.files import check_regular

REQUIRED = ("lesion_id", "image_id", "dx")
OPTIONAL = ("dx_type", "age", "sex", "localization", "dataset")
METADATA_NAMES = ("HAM10000_metadata.csv", "HAM10000_metadata.tab")


def find_metadata(src: Path) -> Path:
    if src.is_file():
        return src
    for name in METADATA_NAMES:
        for candidate in (src / name, src / name.lower()):
            if candidate.exists():
                return candidate
    raise HamtuneError(f"{src}: no HAM10000_metadata.csv or HAM10000_metadata.tab found")


def read_metadata(path: Path) -> pd.DataFrame:
    """Read and validate the release's metadata; errors name the file, line and field."""
    sep = "\t" if path.suffix.lower() == ".tab" else ","
    try:
        check_regular(path)  # a link to /dev/zero would be read until memory runs out
        table = pd.read_csv(path, sep=sep, dtype=str, keep_default_na=False, quotechar='"')
    except FileNotFoundError:
        raise HamtuneError(f"{path}: no such metadata file") from None
    except pd.errors.EmptyDataError:
        raise HamtuneError(f"{path}: the metadata file is empty; expected a header line and one row per image") from None
    except (pd.errors.ParserError, UnicodeDecodeError, IsADirectoryError) as exc:
        raise HamtuneError(f"{path}: not a readable metadata table ({exc})") from None
    table.columns = [c.strip().strip('"').lower() for c in table.columns]
    missing = [c for c in REQUIRED if c not in table.columns]
    if missing:
        raise HamtuneError(
            f"{path}: missing column(s) {', '.join(missing)}; found {', '.join(table.columns) or 'none'}; "
            f"expected {','.join(REQUIRED + OPTIONAL[:4])}"
        )
    table = table[[c for c in REQUIRED + OPTIONAL if c in table.columns]].copy()
    for column in table.columns:
        table[column] = table[column].str.strip()
    for column in REQUIRED:
        empty = np.flatnonzero(table[column].to_numpy() == "")
        if len(empty):
            raise HamtuneError(f"{path}: line {empty[0] + 2}: field {column!r} is empty")
    table["dx"] = table["dx"].str.lower()
    bad = np.flatnonzero(~table["dx"].isin(DX_CODES).to_numpy())
    if len(bad):
        row = bad[0]
        raise HamtuneError(f"{path}: line {row + 2}: field 'dx' is {table['dx'].iloc[row]!r}, not one of {', '.join(DX_CODES)}")
    duplicated = np.flatnonzero(table["image_id"].duplicated().to_numpy())
    if len(duplicated):
        row = duplicated[0]
        raise HamtuneError(f"{path}: line {row + 2}: image_id {table['image_id'].iloc[row]!r} is listed twice")
    if "age" in table.columns:
        raw = table["age"].replace({"": None, "NaN": None, "nan": None, "NA": None, "unknown": None})
        age = pd.to_numeric(raw, errors="coerce")
        bad = np.flatnonzero((age.isna() & raw.notna()).to_numpy() | (age < 0).to_numpy() | (age > 130).to_numpy())
        if len(bad):
            row = bad[0]
            raise HamtuneError(f"{path}: line {row + 2}: field 'age' is {table['age'].iloc[row]!r}, not an age in years")
        table["age"] = age.astype("float64")
    return table.reset_index(drop=True)


def index_images(folder: Path) -> tuple[dict[str, ImageRef], list[Path]]:
    """Map image ids to JPEGs in the release's folders and zips (zips are read in place)."""
    found: dict[str, ImageRef] = {}
    files: list[Path] = []
    folders = [folder] + sorted(p for p in folder.iterdir() if p.is_dir())
    for directory in folders:
        for entry in sorted(directory.iterdir()) if directory.is_dir() else []:
            if entry.suffix.lower() in IMAGE_SUFFIXES and entry.is_file():
                found.setdefault(entry.stem, ImageRef(str(entry)))
                files.append(entry)
    for archive in sorted(folder.glob("*.zip")):
        try:
            with zipfile.ZipFile(archive) as z:
                members = z.namelist()
        except zipfile.BadZipFile:
            raise HamtuneError(f"{archive}: not a readable zip file (truncated download?)") from None
        files.append(archive)
        for member in members:
            stem, _, suffix = Path(member).name.rpartition(".")
            if suffix.lower() in ("jpg", "jpeg", "png") and stem:
                found.setdefault(stem, ImageRef(str(archive), member))
    return found, files


def attach_images(
    table: pd.DataFrame, images: dict[str, ImageRef], metadata: Path, looked_in: Path, skip_missing: bool
) -> tuple[pd.DataFrame, list[ImageRef], str | None]:
    """Pair each row with its image; missing images are an error unless skip_missing is set."""
    present = table["image_id"].isin(images.keys()).to_numpy()
    note = None
    if not present.all():
        absent = table["image_id"][~present].tolist()
        first = ", ".join(absent[:5])
        message = f"{len(absent)} of {len(table)} images listed in {metadata} are missing from {looked_in} (first: {first})"
        if not skip_missing:
            raise HamtuneError(f"{message}; pass --skip-missing to go on without them")
        note = message + "; skipped"
        table = table[present].reset_index(drop=True)
    return table, [images[i] for i in table["image_id"]], note


def load(src: Path, *, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    metadata = find_metadata(src)
    folder = metadata.parent
    table = read_metadata(metadata)
    images, files = index_images(folder)
    table, refs, note = attach_images(table, images, metadata, folder, skip_missing)
    check_mapping(table["dx"], "HAM10000 metadata (dx column)", metadata)
    table["source"] = "release"
    source = Source("release", src, table, "dx codes as written in the metadata", [metadata] + files, refs=refs)
    if note:
        source.note(note)
    return source
