"""Per-image reconstruction and KL terms; the training loss and the anomaly scores both come from here."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

HALF_LOG_PI = 0.5 * math.log(math.pi)


def per_image_terms(
    recon: torch.Tensor, x: torch.Tensor, mu: torch.Tensor | None, logvar: torch.Tensor | None, recon_loss: str
) -> dict[str, torch.Tensor]:
    """Per image: mse (mean squared error per pixel), nll (reconstruction negative log-likelihood
    summed over pixels, in nats) and kl (KL to the prior, VAE only: an AE's logvar is None or has zero columns).

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
    return terms


def training_loss(terms: dict[str, torch.Tensor], variational: bool, recon_loss: str, beta: float, pixels: int) -> torch.Tensor:
    """AE: mean per-pixel MSE (or BCE); VAE: mean over images of summed reconstruction + beta * KL."""
    if variational:
        return (terms["nll"] + beta * terms["kl"]).mean()
    if recon_loss == "bce":
        return terms["nll"].mean() / pixels
    return terms["mse"].mean()
