"""Classical anomaly detectors on raw pixels: each is fitted on normal training images only.

A deep model earns its keep only by beating these. Every method is one function that fits on the
training normals and returns a scorer: images in, per-image anomaly scores out (higher is more
anomalous), plus reconstructions where the method has them (PCA).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from hamtune.errors import HamtuneError

DEFAULT_METHODS = ("pca-8", "pca-32", "pca-64", "iforest", "knn-5")


@dataclass
class Scored:
    """Per-image anomaly scores and, for a reconstructing method, the reconstructions ([0,1], flattened)."""

    scores: np.ndarray
    reconstructions: np.ndarray | None = None


Scorer = Callable[[np.ndarray], Scored]


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W,C) -> float32 (N, H*W*C) in [0,1]: the same values the deep models see."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0


def pca(train: np.ndarray, n_components: int = 32, seed: int = 0) -> Scorer:
    """Reconstruction MSE through the top principal components of the normal images.

    Reconstructions are clipped to [0,1], the range of real pixels (the deep models' sigmoid does the same).
    """
    from sklearn.decomposition import PCA

    if not 1 <= n_components <= min(train.shape):
        raise HamtuneError(f"pca-{n_components}: needs 1..{min(train.shape)} components "
                           f"({len(train)} training images of {train.shape[1]} values)")
    model = PCA(n_components=n_components, random_state=seed).fit(train)

    def score(x: np.ndarray) -> Scored:
        recon = np.clip(model.inverse_transform(model.transform(x)), 0.0, 1.0).astype(np.float32)
        return Scored(((recon - x) ** 2).mean(axis=1).astype(np.float64), recon)

    return score


def isolation_forest(train: np.ndarray, n_estimators: int = 200, seed: int = 0) -> Scorer:
    """IsolationForest on pixels: images that few random splits isolate are anomalous."""
    from sklearn.ensemble import IsolationForest

    model = IsolationForest(n_estimators=n_estimators, random_state=seed).fit(train)
    return lambda x: Scored(-model.score_samples(x).astype(np.float64))


def knn(train: np.ndarray, k: int = 5) -> Scorer:
    """Mean Euclidean distance to the k nearest normal training images."""
    from sklearn.neighbors import NearestNeighbors

    if not 1 <= k <= len(train):
        raise HamtuneError(f"knn-{k}: k must be between 1 and the {len(train)} training images")
    model = NearestNeighbors(n_neighbors=k).fit(train)

    def score(x: np.ndarray) -> Scored:
        distances, _ = model.kneighbors(x)
        return Scored(distances.mean(axis=1).astype(np.float64))

    return score


@dataclass(frozen=True)
class Method:
    """A named, configured method: `fit(train normals)` gives its scorer."""

    name: str
    family: str
    fit: Callable[[np.ndarray], Scorer]
    n_components: int | None = None


def parse_method(name: str, seed: int = 0) -> Method:
    """`pca-32`, `iforest` (or `iforest-200` trees), `knn-5`: the model names the results carry."""
    match = re.fullmatch(r"(pca|iforest|knn)(?:-(\d+))?", name.strip().lower())
    if not match:
        raise HamtuneError(f"unknown baseline {name!r}; use pca-N, iforest (or iforest-TREES), knn-K, e.g. {','.join(DEFAULT_METHODS)}")
    family, number = match.group(1), match.group(2)
    value = int(number) if number else None
    if value == 0:
        raise HamtuneError(f"baseline {name!r}: the number after the dash must be at least 1")
    if family == "pca":
        value = value or 32
        return Method(f"pca-{value}", family, partial(pca, n_components=value, seed=seed), n_components=value)
    if family == "iforest":
        return Method("iforest" if value is None else f"iforest-{value}", family,
                      partial(isolation_forest, n_estimators=value or 200, seed=seed))
    value = value or 5
    return Method(f"knn-{value}", family, partial(knn, k=value))


def parse_methods(text: str | list[str] | tuple[str, ...], seed: int = 0) -> list[Method]:
    names = text.split(",") if isinstance(text, str) else list(text)
    methods = [parse_method(n, seed) for n in names if n.strip()]
    if not methods:
        raise HamtuneError("no baseline methods given; e.g. " + ",".join(DEFAULT_METHODS))
    return list({m.name: m for m in methods}.values())
