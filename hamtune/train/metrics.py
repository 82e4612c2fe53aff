"""Image-quality and detection metrics: SSIM/PSNR in torch, AUROC/AUPRC, and a threshold chosen on validation."""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

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
    mu_x, mu_y = mu_x + shift, mu_y + shift
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def psnr(mse: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Per-image PSNR in dB from per-image MSE (capped at 100 dB for a perfect reconstruction)."""
    return (10 * torch.log10(data_range**2 / mse.clamp_min(1e-10))).clamp(max=100.0)


def auroc(labels: np.ndarray, scores: np.ndarray) -> float:
    """AUROC, or NaN when only one class is present (an undefined metric, not a zero)."""
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(roc_auc_score(labels, scores))


def auprc(labels: np.ndarray, scores: np.ndarray) -> float:
    if len(np.unique(labels)) < 2:
        return math.nan
    return float(average_precision_score(labels, scores))


def choose_threshold(labels: np.ndarray, scores: np.ndarray) -> float:
    """The score threshold that maximises F1 on these (validation) images; flag = score > threshold.

    It lies halfway between the lowest flagged score and the next lower score, so it does not
    sit exactly on a validation image's score.
    """
    if len(np.unique(labels)) < 2:
        return math.inf if labels.sum() == 0 else -math.inf
    precision, recall, thresholds = precision_recall_curve(labels, scores)
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
