"""MedMNIST's dermamnist*.npz: pre-split arrays with their own label order."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.labels import DERMAMNIST_LABELS
from hamtune.data.loader import Source, check_mapping, pick_one
from hamtune.errors import HamtuneError
from hamtune.files import MAX_SOURCE_BYTES, check_regular

MAPPING = "DermaMNIST order (0 akiec, 1 bcc, 2 bkl, 3 df, 4 mel, 5 nv, 6 vasc)"
SPLITS = ("train", "val", "test")


def find_file(src: Path) -> Path:
    if src.is_file():
        return src
    return pick_one(src, sorted(src.glob("dermamnist*.npz")), "dermamnist")


def load(src: Path, *, skip_missing: bool = False, metadata: Path | None = None) -> Source:
    path = find_file(src)
    check_regular(path, MAX_SOURCE_BYTES)
    try:
        archive = np.load(path, allow_pickle=False)
        keys = set(archive.files)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
        raise HamtuneError(f"{path}: not a readable .npz file ({exc})") from None
    wanted = [f"{s}_{k}" for s in SPLITS for k in ("images", "labels")]
    missing = [k for k in wanted if k not in keys]
    if missing:
        raise HamtuneError(f"{path}: missing key(s) {', '.join(missing)}; found {', '.join(sorted(keys)) or 'none'}")
    images, labels, splits, ids = [], [], [], []
    for split in SPLITS:
        try:
            x, y = archive[f"{split}_images"], archive[f"{split}_labels"]
            if not np.issubdtype(y.dtype, np.integer) or y.ndim not in (1, 2) or (y.ndim == 2 and y.shape[1] != 1):
                raise ValueError(f"{split}_labels must be integers (N,) or (N, 1), got {y.dtype} {y.shape}")
            y = y.reshape(-1)
        except (ValueError, OSError, EOFError, zipfile.BadZipFile, zlib.error) as exc:  # object arrays need pickle: refused
            raise HamtuneError(f"{path}: {split}_images/{split}_labels are not plain arrays ({exc})") from None
        if x.ndim == 3:
            x = x[..., None]
        if x.ndim != 4 or x.shape[-1] not in (1, 3) or x.dtype != np.uint8 or len(x) != len(y):
            raise HamtuneError(
                f"{path}: {split}_images must be uint8 (N,H,W[,C]) with one label each; got {x.dtype} {x.shape} and {len(y)} labels"
            )
        if len(y) and (y.min() < 0 or y.max() > 6):
            bad = int(np.flatnonzero((y < 0) | (y > 6))[0])
            raise HamtuneError(f"{path}: {split}_labels[{bad}] is {y[bad]}, not a label in 0..6")
        images.append(x)
        labels.append(y.astype(np.int64))
        splits += [split] * len(y)
        ids += [f"dermamnist_{split}_{i:05d}" for i in range(len(y))]
    dx = pd.Series([DERMAMNIST_LABELS[i] for i in np.concatenate(labels)], dtype=str)
    check_mapping(dx, MAPPING, path)
    table = pd.DataFrame({"image_id": ids, "lesion_id": None, "dx": dx, "official_split": splits, "source": "dermamnist"})
    source = Source("dermamnist", src, table, MAPPING, [path], pixels=np.concatenate(images))
    source.note(
        f"{path.name} has no lesion ids: splits are per image (its official split, kept as 'official', "
        "also lets one lesion's photos cross splits)"
    )
    return source
