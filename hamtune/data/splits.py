"""Lesion-grouped, dx-stratified splits, the anomaly protocols, and class-rebalancing weights."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from hamtune.errors import HamtuneError

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class Protocol:
    """Which diagnoses count as normal (trained on) and which as anomalies (to be detected)."""

    name: str
    normal: tuple[str, ...]
    anomalous: tuple[str, ...]

    def labels(self, dx: pd.Series | np.ndarray) -> np.ndarray:
        """0 normal, 1 anomaly, -1 left out of this protocol."""
        dx = np.asarray(dx)
        out = np.full(len(dx), -1, dtype=np.int8)
        out[np.isin(dx, self.normal)] = 0
        out[np.isin(dx, self.anomalous)] = 1
        return out


PROTOCOLS: dict[str, Protocol] = {
    "cancer": Protocol("cancer", normal=("nv", "bkl", "vasc", "df"), anomalous=("mel", "bcc", "akiec")),
    "nevus": Protocol("nevus", normal=("nv",), anomalous=("mel", "bkl", "bcc", "akiec", "vasc", "df")),
}


def get_protocol(name: str) -> Protocol:
    try:
        return PROTOCOLS[name]
    except KeyError:
        raise HamtuneError(f"unknown protocol {name!r}; choose one of {', '.join(PROTOCOLS)}") from None


def lesion_groups(meta: pd.DataFrame) -> np.ndarray:
    """The grouping key per image: its lesion id, or the image itself where the source has none."""
    lesions = meta["lesion_id"].astype("object")
    return np.where(lesions.isna(), "image:" + meta["image_id"].astype(str), lesions.astype(str))


def split_by_lesion(meta: pd.DataFrame, fractions: tuple[float, float, float] = (0.7, 0.15, 0.15), seed: int = 0) -> np.ndarray:
    """Assign every image to train/val/test so that no lesion crosses splits and each dx keeps its share.

    Lesions of one dx are shuffled (seeded) and each goes to the split furthest below its target
    number of images, which keeps per-split class proportions close to the whole even though
    lesions have one to six photos.
    """
    if len(fractions) != 3 or min(fractions) < 0 or abs(sum(fractions) - 1) > 1e-6:
        raise HamtuneError(f"split fractions must be three non-negative numbers summing to 1, got {fractions}")
    groups = lesion_groups(meta)
    frame = pd.DataFrame({"group": groups, "dx": meta["dx"].to_numpy()})
    lesions = frame.groupby("group", sort=True).agg(dx=("dx", "first"), n=("dx", "size"))
    rng = np.random.default_rng(seed)
    assigned: dict[str, int] = {}
    targets = np.asarray(fractions, dtype=float)
    for dx in sorted(lesions["dx"].unique()):
        of_class = lesions[lesions["dx"] == dx]
        sizes, names = of_class["n"].to_numpy(), of_class.index.to_numpy()
        wanted = targets * sizes.sum()
        filled = np.zeros(3)
        for i in rng.permutation(len(of_class)):
            k = int(np.argmax(wanted - filled))
            filled[k] += sizes[i]
            assigned[names[i]] = k
    return np.array(SPLITS)[[assigned[g] for g in groups]]


def official_splits(meta: pd.DataFrame) -> np.ndarray:
    """The split a source ships with (DermaMNIST, ISIC 2018), for comparisons with published numbers."""
    if "official_split" not in meta.columns or meta["official_split"].isna().any():
        raise HamtuneError("split=official needs a source with an official split (DermaMNIST or ISIC 2018)")
    return meta["official_split"].to_numpy().astype(str)


def rebalance_weights(dx: np.ndarray) -> np.ndarray:
    """Per-image sampling weights that make every class equally likely (nv is 83% of normal images)."""
    dx = np.asarray(dx)
    classes, inverse, counts = np.unique(dx, return_inverse=True, return_counts=True)
    weights = 1.0 / (counts[inverse] * len(classes))
    return weights / weights.sum()
