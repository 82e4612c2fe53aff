"""Classical anomaly detectors on raw pixels: each is fitted on normal training images only.

A deep model earns its keep only by beating these. Every method is one function that fits on the
training normals and returns a scorer: images in, per-image anomaly scores out (higher is more
anomalous), plus reconstructions where the method has them (PCA, and the non-learned ones: a Gaussian
blur and a down/up-sampling of the image itself, the floor any trained reconstruction must clear). A
method may offer several settings (blur sigmas, sampling factors); the run chooses one on validation.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from hamtune.errors import HamtuneError, UsageError

DEFAULT_METHODS = ("pca-8", "pca-32", "pca-64", "blur", "resample", "iforest", "knn-5")
BLUR_SIGMAS = (1, 2, 4, 8)  # pixels; chosen on validation (at 64 px lesion texture lives at 1-4 px)
RESAMPLE_FACTORS = (2, 4, 8)  # down-sampling factors; chosen on validation
RECONSTRUCTING = ("pca", "blur", "resample")
BATCH = 256
Shape = tuple[int, int, int]  # H, W, C of the flattened images


@dataclass
class Scored:
    """Per-image anomaly scores and, for a reconstructing method, the reconstructions ([0,1], flattened)."""

    scores: np.ndarray
    reconstructions: np.ndarray | None = None


Scorer = Callable[[np.ndarray], Scored]
Fit = Callable[[np.ndarray, Shape], Scorer]  # (training normals, image shape) -> scorer


def pixels(images: np.ndarray) -> np.ndarray:
    """uint8 (N,H,W,C) -> float32 (N, H*W*C) in [0,1]: the same values the deep models see."""
    return np.asarray(images, dtype=np.float32).reshape(len(images), -1) / 255.0


def pca(train: np.ndarray, n_components: int = 32, seed: int = 0) -> Scorer:
    """Reconstruction MSE through the top principal components of the normal images.

    Reconstructions are clipped to [0,1], the range of real pixels (the deep models' sigmoid does the same).
    """
    from sklearn.decomposition import PCA

    if not 1 <= n_components <= min(train.shape):
        raise HamtuneError(
            f"pca-{n_components}: needs 1..{min(train.shape)} components ({len(train)} training images of {train.shape[1]} values)"
        )
    model = PCA(n_components=n_components, random_state=seed).fit(train)

    def score(x: np.ndarray) -> Scored:
        recon = np.clip(model.inverse_transform(model.transform(x)), 0.0, 1.0).astype(np.float32)
        return Scored(((recon - x) ** 2).mean(axis=1).astype(np.float64), recon)

    return score


def _filtered(transform: Callable, shape: Shape) -> Scorer:
    """A scorer that reconstructs each image by a fixed torch transform of it (NCHW in [0,1]), scored by MSE."""
    import torch

    h, w, c = shape

    def score(x: np.ndarray) -> Scored:
        parts = []
        for start in range(0, len(x), BATCH):
            batch = torch.from_numpy(np.ascontiguousarray(x[start : start + BATCH])).view(-1, h, w, c).permute(0, 3, 1, 2)
            parts.append(transform(batch).clamp(0, 1).permute(0, 2, 3, 1).reshape(len(batch), -1).numpy())
        recon = np.concatenate(parts).astype(np.float32) if parts else np.empty_like(x)
        return Scored(((recon - x) ** 2).mean(axis=1).astype(np.float64), recon)

    return score


def gaussian_blur(sigma: float):
    """A separable Gaussian blur (radius 3 sigma, reflected borders): the image without its fine structure."""
    import torch
    import torch.nn.functional as F

    def transform(x: torch.Tensor) -> torch.Tensor:
        radius = min(math.ceil(3 * sigma), x.shape[-1] - 1, x.shape[-2] - 1)
        coords = torch.arange(-radius, radius + 1, dtype=torch.float32)
        kernel = torch.exp(-(coords**2) / (2 * sigma**2))
        kernel = kernel / kernel.sum()
        c = x.shape[1]
        out = F.pad(x, (radius,) * 4, mode="reflect")
        out = F.conv2d(out, kernel.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        return F.conv2d(out, kernel.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)

    return transform


def down_up(factor: int):
    """Area down-sampling by `factor`, then bilinear up-sampling back: a fixed low-resolution reconstruction."""
    import torch.nn.functional as F

    def transform(x):
        h, w = x.shape[-2:]
        small = F.interpolate(x, size=(max(1, h // factor), max(1, w // factor)), mode="area")
        return F.interpolate(small, size=(h, w), mode="bilinear", align_corners=False)

    return transform


def blur(train: np.ndarray, shape: Shape, sigma: float) -> Scorer:
    """Reconstruction by a Gaussian blur of the image itself; nothing is fitted (the training images are unused)."""
    return _filtered(gaussian_blur(sigma), shape)


def resample(train: np.ndarray, shape: Shape, factor: int) -> Scorer:
    """Reconstruction by down- then up-sampling the image itself; nothing is fitted."""
    return _filtered(down_up(factor), shape)


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


def _on_pixels(fit: Callable[[np.ndarray], Scorer]) -> Fit:
    return lambda train, shape: fit(train)


@dataclass(frozen=True)
class Method:
    """A named method and its settings: each `(setting, fit)` fits on the training normals (and the image
    shape) and gives a scorer; with several settings, the run keeps the one validation prefers."""

    name: str
    family: str
    candidates: tuple[tuple[str, Fit], ...]
    n_components: int | None = None

    @property
    def reconstructs(self) -> bool:
        """Scored, like the deep models, by every reconstruction score (mse, ssim, mse+ssim)."""
        return self.family in RECONSTRUCTING


def _filter_method(family: str, key: str, value: int | None, grid: tuple[int, ...], build) -> Method:
    settings = (value,) if value else grid
    name = family if value is None else f"{family}-{value}"
    return Method(name, family, tuple((f"{key}={v}", partial(build, **{key: v})) for v in settings))


def parse_method(name: str, seed: int = 0) -> Method:
    """`pca-32`, `blur` (sigma chosen on validation) or `blur-4`, `resample` (factor chosen on validation) or
    `resample-4`, `iforest` (or `iforest-200` trees), `knn-5`: the model names the results carry."""
    match = re.fullmatch(r"(pca|blur|resample|iforest|knn)(?:-(\d+))?", name.strip().lower())
    if not match:
        raise UsageError(
            f"unknown baseline {name!r}; use pca-N, blur (or blur-SIGMA), resample (or resample-FACTOR), "
            f"iforest (or iforest-TREES), knn-K, e.g. {','.join(DEFAULT_METHODS)}"
        )
    family, number = match.group(1), match.group(2)
    value = int(number) if number else None
    if value == 0:
        raise UsageError(f"baseline {name!r}: the number after the dash must be at least 1")
    if family == "pca":
        value = value or 32
        fit = _on_pixels(partial(pca, n_components=value, seed=seed))
        return Method(f"pca-{value}", family, (("", fit),), n_components=value)
    if family == "blur":
        return _filter_method(family, "sigma", value, BLUR_SIGMAS, blur)
    if family == "resample":
        return _filter_method(family, "factor", value, RESAMPLE_FACTORS, resample)
    if family == "iforest":
        fit = _on_pixels(partial(isolation_forest, n_estimators=value or 200, seed=seed))
        return Method("iforest" if value is None else f"iforest-{value}", family, (("", fit),))
    value = value or 5
    return Method(f"knn-{value}", family, (("", _on_pixels(partial(knn, k=value))),))


def parse_methods(text: str | list[str] | tuple[str, ...], seed: int = 0) -> list[Method]:
    names = text.split(",") if isinstance(text, str) else list(text)
    methods = [parse_method(n, seed) for n in names if n.strip()]
    if not methods:
        raise UsageError("no baseline methods given; e.g. " + ",".join(DEFAULT_METHODS))
    return list({m.name: m for m in methods}.values())
