"""Per-image reconstruction and KL terms; the training loss and the anomaly scores both come from here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from hamtune.train import metrics
from hamtune.train.config import SSIM_LOSSES
from hamtune.train.tensors import to_unit

HALF_LOG_PI = 0.5 * math.log(math.pi)
# ssim_l1 weighs 1 - SSIM and the mean absolute error as Zhao et al. (2017, "Loss functions for image restoration with
# neural networks") found best: alpha = 0.84.
SSIM_L1_ALPHA = 0.84


def per_image_terms(
    recon: torch.Tensor,
    x: torch.Tensor,
    mu: torch.Tensor | None,
    logvar: torch.Tensor | None,
    recon_loss: str,
    input_range: str = "01",
) -> dict[str, torch.Tensor]:
    """Per image: mse (mean squared error per pixel), nll (reconstruction negative log-likelihood
    summed over pixels, in nats), kl (KL to the prior, VAE only: an AE's logvar is None or has zero columns) and,
    for the SSIM losses (an AE's only), `structural`: 1 - SSIM on [0, 1], plus alpha-weighted L1 for ssim_l1.

    For mse the likelihood is Gaussian with variance 1/2, so nll = SSE + D/2 log(pi): the loss
    keeps the familiar summed squared error and the ELBO is still a real quantity in nats.
    """
    recon, x = recon.float(), x.float()
    squared = (recon - x).pow(2).flatten(1)
    pixels = squared.shape[1]
    terms = {"mse": squared.mean(1)}
    if recon_loss == "bce":
        terms["nll"] = F.binary_cross_entropy(recon.clamp(1e-6, 1 - 1e-6), x, reduction="none").flatten(1).sum(1)
    else:
        terms["nll"] = squared.sum(1) + pixels * HALF_LOG_PI
    if logvar is not None and logvar.shape[-1] > 0:
        assert mu is not None  # a VAE's encoder gives mu with logvar
        mu, logvar = mu.float(), logvar.float()
        terms["kl"] = 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(1)
    if recon_loss in SSIM_LOSSES:
        unit_recon, unit_x = to_unit(recon, input_range), to_unit(x, input_range)
        structural = 1.0 - metrics.ssim(unit_recon, unit_x)
        if recon_loss == "ssim_l1":
            l1 = (unit_recon - unit_x).abs().flatten(1).mean(1)
            structural = SSIM_L1_ALPHA * structural + (1.0 - SSIM_L1_ALPHA) * l1
        terms["structural"] = structural
    return terms


def training_loss(terms: dict[str, torch.Tensor], variational: bool, recon_loss: str, beta: float, pixels: int) -> torch.Tensor:
    """AE: mean per-pixel MSE (or BCE, or the SSIM loss); VAE: mean over images of summed reconstruction + beta * KL."""
    if variational:
        return (terms["nll"] + beta * terms["kl"]).mean()
    if recon_loss in SSIM_LOSSES:
        return terms["structural"].mean()
    if recon_loss == "bce":
        return terms["nll"].mean() / pixels
    return terms["mse"].mean()
