"""Image-quality and detection metrics: SSIM/PSNR in torch, AUROC/AUPRC, and a threshold chosen on validation.

AUROC, AUPRC and the precision-recall curve are computed here in numpy, to the bit as scikit-learn computes them
(a test holds them to it): importing scikit-learn's metrics costs every process that trains or scores over a
second (it brings SciPy), and every trial of a sweep is such a process."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

SSIM_WINDOW, SSIM_SIGMA = 11, 1.5


def _gaussian_window(size: int, sigma: float, device: torch.device) -> torch.Tensor:
    coords = torch.arange(size, dtype=torch.float64, device=device) - (size - 1) / 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return (window / window.sum()).float()


def ssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image SSIM (Wang et al. 2004): Gaussian window 11, sigma 1.5, population covariances,
    averaged over channels and the valid region; matches scikit-image's structural_similarity
    with gaussian_weights=True, use_sample_covariance=False."""
    return ssim_map(x, y, data_range).flatten(1).mean(1)


def ssim_map(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """The local SSIM behind `ssim`, (N,C,H-w+1,W-w+1): one value per position where the window w fits
    (the valid region), kept so anomaly maps show where an image is unlike its reconstruction."""
    mu_x, mu_y, var_x, var_y, cov = _local_statistics(x, y)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def _local_statistics(x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Gaussian-weighted local means, variances and covariance (population) of two batches, over the valid region."""
    x, y = x.float(), y.float()
    _, c, h, _ = x.shape
    size = min(SSIM_WINDOW, h if h % 2 else h - 1)
    sigma = SSIM_SIGMA * size / SSIM_WINDOW
    g = _gaussian_window(size, sigma, x.device)
    row, col = g.view(1, 1, 1, size).repeat(c, 1, 1, 1), g.view(1, 1, size, 1).repeat(c, 1, 1, 1)

    def blur(t: torch.Tensor) -> torch.Tensor:
        return F.conv2d(F.conv2d(t, row, groups=c), col, groups=c)

    shift = x.mean((2, 3), keepdim=True)  # (co)variances ignore a constant shift; centring them keeps float32's cancellation small
    x, y = x - shift, y - shift
    mu_x, mu_y = blur(x), blur(y)
    var_x = blur(x * x) - mu_x**2
    var_y = blur(y * y) - mu_y**2
    cov = blur(x * y) - mu_x * mu_y
    return mu_x + shift, mu_y + shift, var_x, var_y, cov


# Multi-scale SSIM (Wang et al. 2003): contrast-structure at every scale, luminance at the coarsest, each to its weight.
# Five scales need 176 px with an 11-pixel window; a 64-pixel image has three down to MSSSIM_SMALLEST, so the first
# weights are used and renormalised to sum to one.
MSSSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)
MSSSIM_SMALLEST = 16


def msssim(x: torch.Tensor, y: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image multi-scale SSIM of two batches (scales halved by 2x2 averaging while the side stays >= 16)."""
    scales = 1
    while scales < len(MSSSIM_WEIGHTS) and min(x.shape[-2:]) >> scales >= MSSSIM_SMALLEST:
        scales += 1
    weights = [w / sum(MSSSIM_WEIGHTS[:scales]) for w in MSSSIM_WEIGHTS[:scales]]
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    x, y = x.float(), y.float()
    factors = []  # per scale, (N,): no tensor of the batch's size is made, so exported graphs keep the batch dynamic
    for scale, weight in enumerate(weights):
        mu_x, mu_y, var_x, var_y, cov = _local_statistics(x, y)
        cs = ((2 * cov + c2) / (var_x + var_y + c2)).flatten(1).mean(1)
        factors.append(cs.clamp_min(1e-6) ** weight)
        if scale == scales - 1:
            luminance = ((2 * mu_x * mu_y + c1) / (mu_x**2 + mu_y**2 + c1)).flatten(1).mean(1)
            factors.append(luminance.clamp_min(1e-6) ** weight)
        else:
            x, y = F.avg_pool2d(x, 2), F.avg_pool2d(y, 2)
    return torch.stack(factors).prod(0)


# Gradient-magnitude similarity (Xue et al. 2014, GMSD; used as an anomaly score by Zavrtanik et al. 2021, RIAD):
# Prewitt gradients of the grey image, and GMSD's constant 170 on a 0-255 scale.
GMS_C = 170 / 255**2
_PREWITT = torch.tensor([[1.0, 0.0, -1.0], [1.0, 0.0, -1.0], [1.0, 0.0, -1.0]]) / 3


def gms_map(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """The local gradient-magnitude similarity of two [0,1] batches, (N,H-2,W-2): 1 where the edges agree, lower
    where one image has an edge the other lacks (an anomaly's structure a reconstruction leaves out)."""
    kernels = torch.stack([_PREWITT, _PREWITT.T]).unsqueeze(1).to(x.device)

    def magnitude(t: torch.Tensor) -> torch.Tensor:
        gradients = F.conv2d(t.float().mean(1, keepdim=True), kernels)
        return gradients.pow(2).sum(1).sqrt()

    m_x, m_y = magnitude(x), magnitude(y)
    return (2 * m_x * m_y + GMS_C) / (m_x**2 + m_y**2 + GMS_C)


def gms(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Per-image mean gradient-magnitude similarity over the valid region."""
    return gms_map(x, y).flatten(1).mean(1)


def psnr(mse: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB from per-image MSE (capped at 100 dB for a perfect reconstruction)."""
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-10))).clamp(max=100.0)


def _counts(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """False and true positives when flagging score >= t, for each distinct score t from the highest down; and t."""
    scores = np.asarray(scores, dtype=float)
    if not np.isfinite(scores).all():
        raise ValueError("scores contain NaN or infinity")
    order = np.argsort(-scores, kind="stable")
    ranked = scores[order]
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]  # the last image of each group of tied scores
    tps = np.cumsum(np.asarray(labels)[order] == 1, dtype=np.float64)[ends]
    return 1 + ends - tps, tps, ranked[ends]


def _pr_curve(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Precision, recall (each ending at 1 and 0) and the thresholds, lowest threshold first."""
    fps, tps, thresholds = _counts(labels, scores)
    precision = tps / (tps + fps)
    recall = tps / tps[-1]
    return np.r_[precision[::-1], 1.0], np.r_[recall[::-1], 0.0], thresholds[::-1]


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (an undefined metric, not a zero): the trapezoid rule over the
    ROC curve's corners (collinear points dropped, as scikit-learn does, so the sums come out the same)."""
    if len(np.unique(labels)) < 2:
        return math.nan
    fps, tps, _ = _counts(labels, scores)
    if len(fps) > 2:
        corners = np.flatnonzero(np.r_[True, np.logical_or(np.diff(fps, 2), np.diff(tps, 2)), True])
        fps, tps = fps[corners], tps[corners]
    fpr, tpr = np.r_[0.0, fps] / fps[-1], np.r_[0.0, tps] / tps[-1]
    return float(np.add.reduce(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2.0))


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    """Average precision: precision summed over the steps of recall (no interpolation), NaN with one class only."""
    if len(np.unique(labels)) < 2:
        return math.nan
    precision, recall, _ = _pr_curve(labels, scores)
    return float(max(0.0, -np.sum(np.diff(recall) * precision[:-1])))


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold that maximises F1 on these (validation) images; flag = score > threshold.

    It lies halfway between the lowest flagged score and the next lower score, so it does not
    sit exactly on a validation image's score.
    """
    if len(np.unique(labels)) < 2:
        return math.inf if labels.sum() == 0 else -math.inf
    precision, recall, thresholds = _pr_curve(labels, scores)
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0)
    best = float(thresholds[int(np.argmax(f1[:-1]))])
    below = scores[scores < best]
    return (best + float(below.max())) / 2 if len(below) else best - 1e-6 * max(1.0, abs(best))


def detection_at(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    """Precision, recall and F1 of flagging score > threshold."""
    flagged = scores > threshold
    tp = float(np.sum(flagged & (labels == 1)))
    precision = tp / flagged.sum() if flagged.sum() else 0.0
    recall = tp / (labels == 1).sum() if (labels == 1).sum() else math.nan
    f1 = 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
