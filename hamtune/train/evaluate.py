"""Per-image anomaly scores and the metrics derived from them; the threshold is chosen on validation only."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from hamtune.data.splits import Protocol
from hamtune.models import Autoencoder
from hamtune.models.losses import per_image_terms
from hamtune.train import metrics
from hamtune.train.config import TrainConfig
from hamtune.train.tensors import to_input, to_unit


@dataclass
class EvalSet:
    """Images of one split (or an external test set) with what the metrics need to know about them."""

    name: str
    images: torch.Tensor  # uint8 (N,H,W,C) on the device; may hold more images than this split
    index: np.ndarray  # rows of `images` in this split, protocol-excluded rows dropped
    labels: np.ndarray  # 0 normal, 1 anomaly
    dx: np.ndarray
    image_id: np.ndarray


@torch.no_grad()
def score_images(
    model: Autoencoder, images: torch.Tensor, index: np.ndarray, input_range: str, recon_loss: str, batch_size: int
) -> dict[str, np.ndarray]:
    """Per-image mse, psnr, ssim (on [0,1]) and, for a VAE, nll, kl and the negative ELBO."""
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {}
    positions = torch.as_tensor(index, dtype=torch.long, device=images.device)
    for start in range(0, len(positions), batch_size):
        x = to_input(images[positions[start : start + batch_size]], input_range)
        recon, mu, logvar = model(x)
        terms = per_image_terms(recon, x, mu, logvar, recon_loss)
        unit_x, unit_recon = to_unit(x, input_range), to_unit(recon, input_range)
        mse = (unit_recon - unit_x).pow(2).flatten(1).mean(1)
        batch = {"mse": mse, "psnr": metrics.psnr(mse), "ssim": metrics.ssim(unit_recon, unit_x), "nll": terms["nll"]}
        if "kl" in terms:
            batch["kl"] = terms["kl"]
            batch["neg_elbo"] = terms["nll"] + terms["kl"]
        for key, value in batch.items():
            out.setdefault(key, []).append(value.detach().float().cpu())
    model.train(was_training)
    return {key: torch.cat(values).numpy().astype(np.float64) for key, values in out.items()}


def anomaly_score(per_image: dict[str, np.ndarray], score: str) -> np.ndarray:
    """The configured score: reconstruction MSE, or the negative ELBO (VAE)."""
    return per_image["neg_elbo"] if score == "elbo" else per_image["mse"]


def split_metrics(prefix: str, per_image: dict[str, np.ndarray], scores: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """AUROC and AUPRC of the scores, and the mean of each reconstruction term there is (none for a
    baseline that does not reconstruct)."""
    out = {f"{prefix}_auroc": metrics.auroc(labels, scores), f"{prefix}_auprc": metrics.auprc(labels, scores)}
    for key in ("mse", "psnr", "ssim"):
        if key in per_image:
            out[f"{prefix}_{key}"] = float(per_image[key].mean())
    if "neg_elbo" in per_image:
        out[f"{prefix}_elbo"] = float(-per_image["neg_elbo"].mean())
    return out


def per_class(prefix: str, scores: np.ndarray, labels: np.ndarray, dx: np.ndarray, protocol: Protocol) -> dict[str, float]:
    """Mean score per dx, and each anomalous class's AUROC against the normal classes (as the literature reports)."""
    out: dict[str, float] = {}
    normal = labels == 0
    for code in protocol.normal + protocol.anomalous:
        mask = dx == code
        if mask.any():
            out[f"{prefix}_score_{code}"] = float(scores[mask].mean())
        if code in protocol.anomalous and mask.any() and normal.any():
            keep = mask | normal
            out[f"{prefix}_auroc_{code}"] = metrics.auroc(labels[keep], scores[keep])
    return out


def detection_metrics(
    val, val_terms: dict[str, np.ndarray], val_scores: np.ndarray,
    test, test_terms: dict[str, np.ndarray], test_scores: np.ndarray,
    protocol: Protocol, val_loss: float | None,
) -> dict[str, float]:
    """Every val and test metric of a scored model, deep or classical (`val`/`test` give `labels` and
    `dx`): the threshold is chosen on val only, then applied to test."""
    threshold = metrics.choose_threshold(val.labels, val_scores)
    out = split_metrics("val", val_terms, val_scores, val.labels)
    if val_loss is not None:
        out["val_loss"] = val_loss
    out["val_f1"] = metrics.detection_at(val.labels, val_scores, threshold)["f1"]
    out["threshold"] = threshold
    out.update(split_metrics("test", test_terms, test_scores, test.labels))
    out.update({f"test_{k}": v for k, v in metrics.detection_at(test.labels, test_scores, threshold).items()})
    out.update(per_class("test", test_scores, test.labels, test.dx, protocol))
    return out


def evaluate(
    model: Autoencoder, val: EvalSet, test: EvalSet, config: TrainConfig, protocol: Protocol, beta: float
) -> tuple[dict[str, float], pd.DataFrame]:
    """All val and test metrics plus the per-image test scores; test labels never touch the threshold."""
    args = (config.input_range, config.recon_loss, config.eval_batch_size)
    val_images = score_images(model, val.images, val.index, *args)
    test_images = score_images(model, test.images, test.index, *args)
    val_scores = anomaly_score(val_images, config.score)
    test_scores = anomaly_score(test_images, config.score)
    normal = val.labels == 0
    if "neg_elbo" in val_images:
        val_loss = val_images["nll"][normal] + beta * val_images["kl"][normal]
    elif config.recon_loss == "bce":
        val_loss = val_images["nll"][normal] / math.prod(val.images.shape[1:])
    else:
        val_loss = val_images["mse"][normal]
    out = detection_metrics(
        val, val_images, val_scores, test, test_images, test_scores, protocol,
        float(val_loss.mean()) if normal.any() else math.nan,
    )
    table = pd.DataFrame(
        {"image_id": test.image_id, "dx": test.dx, "label": test.labels.astype(np.int8), "score": test_scores,
         "mse": test_images["mse"], "ssim": test_images["ssim"]}
    )
    if "neg_elbo" in test_images:
        table["neg_elbo"] = test_images["neg_elbo"]
    return out, table
