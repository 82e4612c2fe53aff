"""Golden vectors: a few input images of a bundle, as the exact uint8 tensors its model takes, with the scores and
threshold decisions the bundle gives them, so a port (ONNX, torch.export, code outside hamtune) can prove it
preprocesses nothing and scores exactly as hamtune does (`hamtune verify BUNDLE --program ...`).

The images come from the validation split the model was exported with (spread over its score range), or,
where that data is not at hand, from a fixed synthetic pattern; the scores are the bundle's own (PyTorch)
scores of exactly these tensors. golden.npz holds plain arrays (np.load with allow_pickle=False) and is covered
by the bundle's digests like every other file.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.images import Preprocess
from hamtune.errors import HamtuneError, first_line
from hamtune.train.config import TrainConfig

log = logging.getLogger(__name__)

GOLDEN = "golden.npz"
COUNT = 4
TOLERANCE = 1e-5  # relative to the golden score, absolute where it is below 1 (standardised scores sit near 0)
KEYS = ("images", "names", "scores", "flagged", "threshold")


@dataclass
class Golden:
    images: np.ndarray  # uint8 (N, H, W, C): the model's input, already decoded, cropped and resized
    names: np.ndarray  # str (N,): the image ids (or synthetic-N)
    scores: np.ndarray  # float64 (N,)
    flagged: np.ndarray  # bool (N,): score > threshold
    threshold: float


def within(found: float, expected: float, tolerance: float = TOLERANCE) -> bool:
    return bool(abs(found - expected) <= tolerance * max(abs(expected), 1.0))


def validation_split(row: pd.Series, config: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """The validation images (uint8 NHWC), labels and ids the trial was chosen on, or None where its prepared data
    (and external test set, which shapes the split) are not where the results say, or are other data now."""
    from hamtune.data.prepare import load_prepared
    from hamtune.train.data import plan_splits

    def cache(path, fingerprint):
        if not isinstance(path, str) or not (Path(path) / "manifest.json").exists():
            return None
        try:
            data = load_prepared(Path(path), verify=False)
        except HamtuneError:
            return None
        return data if data.fingerprint == fingerprint else None

    data = cache(row.get("data_path"), row.get("data_fingerprint"))
    test_path = row.get("test_path")
    test = cache(test_path, row.get("test_data_fingerprint")) if isinstance(test_path, str) else None
    if data is None or (isinstance(test_path, str) and test is None):
        return None
    if data.preprocess != Preprocess(config.image_size, config.crop, config.channels):
        return None
    try:
        plan = plan_splits(data, config, test)
    except HamtuneError:
        return None
    ids = data.meta["image_id"].astype(str).to_numpy()
    return np.asarray(data.images[plan.val]), plan.labels[plan.val], ids[plan.val]


def pick(scores: np.ndarray, count: int = COUNT) -> np.ndarray:
    """Indices of `count` images spread over the score range (lowest, highest and between), in score order."""
    order = np.argsort(scores, kind="stable")
    return order[np.unique(np.linspace(0, len(order) - 1, min(count, len(order))).round().astype(int))]


def synthetic(preprocess: Preprocess, count: int = COUNT) -> np.ndarray:
    """Fixed, image-like uint8 inputs (gradients and a dark blob of growing size), the same on every machine."""
    size = preprocess.size
    y, x = np.mgrid[0:size, 0:size] / max(size - 1, 1)
    images = []
    for k in range(count):
        blob = np.exp(-((x - 0.5) ** 2 + (y - 0.5) ** 2) / (0.02 + 0.03 * k))
        rgb = np.stack([0.8 - 0.3 * blob, 0.6 - 0.4 * blob * (k + 1) / count, 0.5 + 0.2 * x - 0.3 * blob], -1)
        images.append(rgb[..., : preprocess.channels] if preprocess.channels == 3 else rgb.mean(-1, keepdims=True))
    return (np.clip(np.stack(images), 0, 1) * 255).round().astype(np.uint8)


def write_golden(
    folder: Path, scorer: Callable[[np.ndarray], np.ndarray], images: np.ndarray, names: list[str], threshold: float, source: str
) -> dict:
    """Score `images` with the bundle's own scorer and store them as golden.npz; what bundle.json records of it."""
    images = np.ascontiguousarray(images, dtype=np.uint8)
    scores = np.asarray(scorer(images), dtype=np.float64)
    np.savez(
        Path(folder) / GOLDEN,
        images=images,
        names=np.array(names, dtype=str),
        scores=scores,
        flagged=scores > threshold,
        threshold=np.float64(threshold),
    )
    return {
        "file": GOLDEN,
        "count": len(images),
        "source": source,
        "shape": list(images.shape),
        "tolerance": f"{TOLERANCE:g} relative (absolute where the score is below 1)",
    }


def read_golden(path: Path) -> Golden:
    """golden.npz as written: plain arrays of matching lengths; anything else is one error naming the file."""
    if not path.exists():
        raise HamtuneError(f"{path}: missing; this bundle has no golden vectors (exported before they were added), so export it again")
    try:
        with np.load(path, allow_pickle=False) as found:
            values = {key: found[key] for key in KEYS}
    except (OSError, ValueError, KeyError, EOFError) as exc:
        raise HamtuneError(f"{path}: not readable golden vectors ({first_line(exc, 120)}); export the bundle again") from None
    images, scores, n = values["images"], values["scores"], len(values["images"])
    if (
        images.dtype != np.uint8
        or images.ndim != 4
        or scores.shape != (n,)
        or values["flagged"].shape != (n,)
        or values["names"].shape != (n,)
        or n == 0
        or not np.isfinite(scores).all()
    ):
        raise HamtuneError(
            f"{path}: golden vectors must be uint8 images (N,H,W,C) with N finite scores, decisions and names; export the bundle again"
        )
    threshold = float(values["threshold"])
    return Golden(
        images,
        values["names"].astype(str),
        scores.astype(np.float64),
        values["flagged"].astype(bool),
        threshold if not math.isnan(threshold) else math.inf,
    )


def first_mismatch(golden: Golden, scores: np.ndarray, threshold: float) -> str | None:
    """Where recomputed scores leave the golden ones: the first vector off by more than the tolerance, or flagged
    otherwise (a decision is only compared where the score is clear of the threshold by the tolerance)."""
    for i, (name, found, expected, flagged) in enumerate(zip(golden.names, scores, golden.scores, golden.flagged)):
        if not math.isfinite(float(found)) or not within(float(found), float(expected)):
            return f"vector {i + 1} ({name}) scores {float(found):.9g}, golden {float(expected):.9g}"
        clear = not within(float(found), threshold) if math.isfinite(threshold) else True
        if clear and bool(found > threshold) != bool(flagged):
            return (
                f"vector {i + 1} ({name}) is {'flagged' if found > threshold else 'not flagged'} at threshold "
                f"{threshold:.9g}, golden {'flagged' if flagged else 'not flagged'}"
            )
    return None
