"""Writers for small files in the real public formats, so tests load exactly what users download."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.labels import DERMAMNIST_LABELS, HMNIST_LABELS


def write_hmnist(path: Path, pixels: np.ndarray, dx: list[str]) -> Path:
    """hmnist_*.csv: pixel0000.. columns (row-major, RGB interleaved) then label in the hmnist order."""
    flat = pixels.reshape(len(pixels), -1)
    frame = pd.DataFrame(flat, columns=[f"pixel{i:04d}" for i in range(flat.shape[1])])
    frame["label"] = [HMNIST_LABELS.index(d) for d in dx]
    frame.to_csv(path, index=False)
    return path


def write_dermamnist(path: Path, pixels: np.ndarray, dx: list[str], order=DERMAMNIST_LABELS) -> Path:
    """dermamnist.npz: {train,val,test}_{images,labels} with labels shaped (N, 1)."""
    n = len(pixels)
    cut = [0, int(n * 0.7), int(n * 0.8), n]
    labels = np.array([order.index(d) for d in dx], dtype=np.uint8).reshape(-1, 1)
    arrays = {}
    for name, lo, hi in zip(("train", "val", "test"), cut, cut[1:]):
        arrays[f"{name}_images"] = pixels[lo:hi]
        arrays[f"{name}_labels"] = labels[lo:hi]
    np.savez(path, **arrays)
    return path


def zip_release(release: Path, out: Path, tab: bool = False) -> Path:
    """The Dataverse layout: metadata (.csv or tab-separated .tab) plus the two image zips, unextracted."""
    out.mkdir(parents=True)
    metadata = pd.read_csv(release / "HAM10000_metadata.csv", dtype=str, keep_default_na=False)
    if tab:
        metadata.to_csv(out / "HAM10000_metadata.tab", sep="\t", index=False)
    else:
        shutil.copy(release / "HAM10000_metadata.csv", out / "HAM10000_metadata.csv")
    for part, zip_name in (
        ("HAM10000_images_part_1", "HAM10000_images_part1.zip"),
        ("HAM10000_images_part_2", "HAM10000_images_part2.zip"),
    ):
        with zipfile.ZipFile(out / zip_name, "w") as archive:
            for image in sorted((release / part).iterdir()):
                archive.write(image, f"{part}/{image.name}")
    return out


def copy_release(release: Path, out: Path) -> Path:
    shutil.copytree(release, out, ignore=shutil.ignore_patterns(".hamtune*"))
    return out


def copy_results(src: Path, dst: Path) -> Path:
    """The Parquet files and samples of a results folder (not its Ray checkpoints)."""
    dst.mkdir(parents=True)
    for path in src.glob("*.parquet"):
        shutil.copy(path, dst / path.name)
    if (src / "samples").exists():
        shutil.copytree(src / "samples", dst / "samples")
    return dst
