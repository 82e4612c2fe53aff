"""Kaggle's hmnist_*.csv pixel tables: row-major RGB-interleaved pixels plus a label, no lesion ids."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.labels import HMNIST_LABELS
from hamtune.data.loader import Source, check_mapping, pick_one
from hamtune.errors import HamtuneError
from hamtune.files import MAX_SOURCE_BYTES, check_regular

MAPPING = "hmnist order (0 akiec, 1 bcc, 2 bkl, 3 df, 4 nv, 5 vasc, 6 mel)"


def find_table(src: Path) -> Path:
    if src.is_file():
        return src
    return pick_one(src, sorted(src.glob("hmnist_*.csv")), "hmnist")


def image_shape(path: Path, n_pixels: int) -> tuple[int, int, int]:
    """Shape from the file name (hmnist_28_28_RGB.csv) or, failing that, from the pixel count."""
    match = re.match(r"hmnist_(\d+)_(\d+)_(rgb|l)", path.name.lower())
    if match:
        h, w, c = int(match[1]), int(match[2]), 3 if match[3] == "rgb" else 1
        if h * w * c == n_pixels:
            return h, w, c
        raise HamtuneError(f"{path}: the name says {h}x{w}x{c} = {h * w * c} pixels per row but the table has {n_pixels}")
    for c in (3, 1):
        side = round((n_pixels / c) ** 0.5)
        if side * side * c == n_pixels:
            return side, side, c
    raise HamtuneError(f"{path}: {n_pixels} pixel columns is not a square RGB or grey image")


def _first_bad_cell(frame: pd.DataFrame, path: Path) -> HamtuneError | None:
    for column in frame.columns:
        values = frame[column]
        numeric = pd.to_numeric(values, errors="coerce")
        high = 6 if column == "label" else 255
        bad = np.flatnonzero((numeric.isna() | (numeric != numeric.round()) | (numeric < 0) | (numeric > high)).to_numpy())
        if len(bad):
            row = bad[0]
            return HamtuneError(f"{path}: line {row + 2}: field {column!r} is {str(values.iloc[row])!r}, not an integer in 0..{high}")
    return None


def read_table(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read pixels (N,H,W,C uint8) and labels; errors name the line and column."""
    try:
        check_regular(path, MAX_SOURCE_BYTES)  # not a device or FIFO (/dev/zero would never end); the pixel tables are large
        frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as exc:
        raise HamtuneError(f"{path}: not a readable CSV ({exc})") from None
    columns = [str(c) for c in frame.columns]
    if "label" not in columns:
        raise HamtuneError(f"{path}: no 'label' column; hmnist tables have pixel0000.. columns and a label")
    pixel_columns = [c for c in columns if c != "label"]
    expected = [f"pixel{i:04d}" for i in range(len(pixel_columns))]
    if not pixel_columns or pixel_columns != expected:
        wrong = next((c for c, e in zip(pixel_columns, expected) if c != e), "none")
        raise HamtuneError(f"{path}: columns must be pixel0000..pixel{len(expected) - 1:04d} then label; found {wrong!r}")
    if frame.empty:
        raise HamtuneError(f"{path}: the table has no rows")
    h, w, c = image_shape(path, len(pixel_columns))
    error = _first_bad_cell(frame, path) if not all(map(pd.api.types.is_integer_dtype, frame.dtypes)) else None
    pixels = frame[pixel_columns].to_numpy()
    labels = frame["label"].to_numpy()
    if error is None and (pixels.min() < 0 or pixels.max() > 255 or labels.min() < 0 or labels.max() > 6):
        error = _first_bad_cell(frame, path)
    if error is not None:
        raise error
    return pixels.astype(np.uint8).reshape(len(frame), h, w, c), labels.astype(np.int64)


def attach_metadata(table: pd.DataFrame, metadata: Path, file: Path) -> pd.DataFrame:
    """Take lesion and image ids from the release's metadata when the row order demonstrably matches."""
    from hamtune.data.release import read_metadata

    meta = read_metadata(metadata)
    if len(meta) != len(table):
        raise HamtuneError(f"{metadata} has {len(meta)} rows but {file} has {len(table)}; cannot attach lesion ids")
    mismatch = np.flatnonzero(meta["dx"].to_numpy() != table["dx"].to_numpy())
    if len(mismatch):
        row = mismatch[0]
        raise HamtuneError(
            f"{metadata} and {file} disagree at row {row + 1} ({meta['dx'].iloc[row]} vs {table['dx'].iloc[row]}): "
            "the row orders do not match, so lesion ids cannot be attached"
        )
    out = meta.copy()
    out["source"] = table["source"].to_numpy()
    return out


def load(src: Path, *, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    path = find_table(src)
    pixels, labels = read_table(path)
    dx = pd.Series([HMNIST_LABELS[i] for i in labels], dtype=str)
    check_mapping(dx, MAPPING, path)
    table = pd.DataFrame({"image_id": [f"{path.stem}_{i:05d}" for i in range(len(dx))], "lesion_id": None, "dx": dx, "source": "hmnist"})
    files = [path]
    if metadata is not None:
        table = attach_metadata(table, metadata, path)
        files.append(metadata)
    source = Source("hmnist", src, table, MAPPING, files, pixels=pixels)
    if metadata is None:
        source.note(
            f"{path.name} has no lesion ids: splits are made per image, so photos of one lesion can land in "
            "train and test (pass --metadata HAM10000_metadata.csv to attach them if the row order matches)"
        )
    return source
