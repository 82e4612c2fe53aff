"""Per-image anomaly scores and the metrics derived from them; everything a score fits (threshold,
latent Gaussian, standardisation) is fitted on training normals or validation only, never on test."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar, cast

import numpy as np
import pandas as pd
import torch

from hamtune.data.splits import Protocol
from hamtune.models import Autoencoder
from hamtune.train import metrics
from hamtune.train.config import TrainConfig, score_parts
from hamtune.train.losses import per_image_terms
from hamtune.train.scores import PARTS
from hamtune.train.tensors import to_input, to_unit

Values = TypeVar("Values", np.ndarray, torch.Tensor)


@dataclass
class EvalSet:
    """Images of one split (or an external test set) with what the metrics need to know about them."""

    name: str
    images: torch.Tensor  # uint8 (N,H,W,C) on the device; may hold more images than this split
    index: np.ndarray  # rows of `images` in this split, protocol-excluded rows dropped
    labels: np.ndarray  # 0 normal, 1 anomaly
    dx: np.ndarray
    image_id: np.ndarray


@dataclass
class ScoreState:
    """What a score needs besides the weights: the Gaussian of the normal training images' codes (the
    `latent` part) and, for a score of several parts, each part's mean and spread on the validation
    normals, so that parts on different scales weigh alike. Saved with checkpoints and exports."""

    latent_mean: torch.Tensor | None = None
    latent_precision: torch.Tensor | None = None
    center: dict[str, float] = field(default_factory=dict)
    scale: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """Plain tensors, lists and floats: loadable with torch.load(weights_only=True)."""
        out: dict = {"center": dict(self.center), "scale": dict(self.scale)}
        if self.latent_mean is not None:
            assert self.latent_precision is not None  # the latent Gaussian is set whole
            out.update(latent_mean=self.latent_mean.cpu(), latent_precision=self.latent_precision.cpu())
        return out

    def latent_whitening(self, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor] | None:
        """(mean, W) with W W^T = the precision (negative eigenvalues clipped), so the Mahalanobis distance is
        the plain sum of squares |(code - mean) W|^2: no cancellation in float32, here or in an exported graph."""
        if self.latent_mean is None:
            return None
        assert self.latent_precision is not None  # the latent Gaussian is set whole
        values, vectors = torch.linalg.eigh(self.latent_precision.double())
        whitening = (vectors * values.clamp_min(0).sqrt()).float()
        return self.latent_mean.float().to(device), whitening.to(device)

    @classmethod
    def from_dict(cls, values: dict) -> ScoreState:
        return cls(values.get("latent_mean"), values.get("latent_precision"), dict(values.get("center", {})), dict(values.get("scale", {})))


FLIPS = ((), (-1,), (-2,), (-2, -1))  # test-time augmentation: the image and its three flips
# Terms computed only for a score that has them (mse and ssim are always reported).
OPTIONAL_TERMS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {"msssim": metrics.msssim, "gms": metrics.gms}


@torch.no_grad()
def encode_images(model: Autoencoder, images: torch.Tensor, index: np.ndarray, config: TrainConfig) -> torch.Tensor:
    """The codes (VAE: means) of some images, in float32 on the images' device."""
    was_training = model.training
    model.eval()
    positions = torch.as_tensor(index, dtype=torch.long, device=images.device)
    codes = [
        model.encode(to_input(images[positions[s : s + config.eval_batch_size]], config.input_range))[0].float()
        for s in range(0, len(positions), config.eval_batch_size)
    ]
    model.train(was_training)
    return torch.cat(codes)


def latent_gaussian(codes: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and Ledoit-Wolf-shrunk precision of codes: well conditioned even with few images per dimension."""
    from sklearn.covariance import LedoitWolf

    values = codes.double().cpu().numpy()
    fitted = LedoitWolf().fit(values)
    return torch.as_tensor(values.mean(0), dtype=torch.float32), torch.as_tensor(fitted.precision_, dtype=torch.float32)


def score_batch(
    model: Callable[[torch.Tensor], Any],
    original: torch.Tensor,
    config: TrainConfig,
    latent: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> dict[str, torch.Tensor]:
    """Per-image terms of one batch in model space (B,C,H,W): mse and ssim (on [0,1]; msssim and gms where the score
    has them), nll, for a VAE kl and the negative ELBO, with a latent Gaussian (ScoreState.latent_whitening) the
    Mahalanobis distance of the code; with `config.tta` each is the mean over the image and its flips. Also the body of
    the exported score graph."""
    views = FLIPS if config.tta else FLIPS[:1]
    parts = score_parts(config.score)
    batch: dict[str, torch.Tensor] = {}
    for dims in views:
        x = original.flip(dims) if dims else original
        recon, mu, logvar = model(x)
        terms = per_image_terms(recon, x, mu, logvar, config.recon_loss, config.input_range)
        unit_x, unit_recon = to_unit(x, config.input_range), to_unit(recon, config.input_range)
        view = {"mse": (unit_recon - unit_x).pow(2).flatten(1).mean(1), "ssim": metrics.ssim(unit_recon, unit_x), "nll": terms["nll"]}
        for name, term in OPTIONAL_TERMS.items():  # only where the score has them: every other graph stays as it was
            if name in parts:
                view[name] = term(unit_recon, unit_x)
        if "structural" in terms:
            view["structural"] = terms["structural"]
        if "kl" in terms:
            view["kl"] = terms["kl"]
            view["neg_elbo"] = terms["nll"] + terms["kl"]
        if latent is not None:
            view["latent"] = ((mu.float() - latent[0]) @ latent[1]).pow(2).sum(1)
        for key, value in view.items():
            batch[key] = batch.get(key, 0) + value.float() / len(views)
    return batch


@torch.no_grad()
def score_images(
    model: Autoencoder, images: torch.Tensor, index: np.ndarray, config: TrainConfig, state: ScoreState | None = None
) -> dict[str, np.ndarray]:
    """Per-image mse, psnr, ssim, nll (VAE: kl, neg_elbo; with a fitted latent Gaussian: latent) of some images."""
    was_training = model.training
    model.eval()
    out: dict[str, list[torch.Tensor]] = {}
    positions = torch.as_tensor(index, dtype=torch.long, device=images.device)
    latent = state.latent_whitening(images.device) if state is not None else None
    for start in range(0, len(positions), config.eval_batch_size):
        original = to_input(images[positions[start : start + config.eval_batch_size]], config.input_range)
        batch = score_batch(model, original, config, latent)
        batch["psnr"] = metrics.psnr(batch["mse"])
        for key, value in batch.items():
            out.setdefault(key, []).append(value.cpu())
    model.train(was_training)
    return {key: torch.cat(values).numpy().astype(np.float64) for key, values in out.items()}


def _part(per_image: dict[str, Values], part: str) -> Values:
    """One part of a score, oriented so that higher is more anomalous."""
    entry = PARTS[part]
    return 1.0 - per_image[entry.term] if entry.similarity else per_image[entry.term]


def normal_spread(values: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(mean, standard deviation) of the values of the normal (label 0) images: what puts a score part, or an
    ensemble member's score, on a common scale. No spread to divide by gives 1."""
    normal = values[labels == 0]
    spread = float(normal.std()) if len(normal) > 1 else 0.0
    return (float(normal.mean()) if len(normal) else 0.0), (spread if spread > 0 and math.isfinite(spread) else 1.0)


def fit_standardisation(per_image: dict[str, np.ndarray], labels: np.ndarray, score: str, state: ScoreState) -> None:
    """Mean and standard deviation of each part on the validation normals (only for a score of several parts)."""
    parts = score_parts(score)
    if len(parts) < 2:
        return
    for part in parts:
        state.center[part], state.scale[part] = normal_spread(_part(per_image, part), labels)


def anomaly_score(per_image: dict[str, Values], score: str, state: ScoreState | None = None) -> Values:
    """The configured score: one part as it is, or the sum of several parts standardised on validation normals
    (arrays or tensors alike: the exported score graph runs it too)."""
    parts = score_parts(score)
    if len(parts) == 1:
        return _part(per_image, parts[0])
    assert state is not None  # a score of several parts is standardised by the state that fit it
    # two parts or more, so never sum's start 0
    return cast(Values, sum((_part(per_image, p) - state.center[p]) / state.scale[p] for p in parts))


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


def val_metrics(val, val_terms: dict[str, np.ndarray], val_scores: np.ndarray, val_loss: float | None) -> dict[str, float]:
    """Every validation metric, and the threshold: the F1-maximising one on validation."""
    threshold = metrics.choose_threshold(val.labels, val_scores)
    out = split_metrics("val", val_terms, val_scores, val.labels)
    if val_loss is not None:
        out["val_loss"] = val_loss
    out["val_f1"] = metrics.detection_at(val.labels, val_scores, threshold)["f1"]
    out["threshold"] = threshold
    return out


def test_metrics(
    test, test_terms: dict[str, np.ndarray], test_scores: np.ndarray, threshold: float, protocol: Protocol
) -> dict[str, float]:
    """Every test metric at the validation threshold; test labels choose nothing."""
    out = split_metrics("test", test_terms, test_scores, test.labels)
    out.update({f"test_{k}": v for k, v in metrics.detection_at(test.labels, test_scores, threshold).items()})
    out.update(per_class("test", test_scores, test.labels, test.dx, protocol))
    return out


def detection_metrics(
    val,
    val_terms: dict[str, np.ndarray],
    val_scores: np.ndarray,
    test,
    test_terms: dict[str, np.ndarray],
    test_scores: np.ndarray,
    protocol: Protocol,
    val_loss: float | None,
) -> dict[str, float]:
    """Every val and test metric of a scored model, deep or classical (`val`/`test` give `labels` and
    `dx`): the threshold is chosen on val only, then applied to test."""
    out = val_metrics(val, val_terms, val_scores, val_loss)
    out.update(test_metrics(test, test_terms, test_scores, out["threshold"], protocol))
    return out


def _val_loss(val: EvalSet, terms: dict[str, np.ndarray], config: TrainConfig, beta: float) -> float:
    """The training objective on the validation normals (what a loss curve shows)."""
    normal = val.labels == 0
    if not normal.any():
        return math.nan
    if "neg_elbo" in terms:
        loss = terms["nll"][normal] + beta * terms["kl"][normal]
    elif "structural" in terms:
        loss = terms["structural"][normal]
    elif config.recon_loss == "bce":
        loss = terms["nll"][normal] / math.prod(val.images.shape[1:])
    else:
        loss = terms["mse"][normal]
    return float(loss.mean())


@dataclass
class Evaluation:
    """One evaluation of a model: its metrics, the fitted score state, and (with test) per-image test scores."""

    metrics: dict[str, float]
    state: ScoreState
    scores: pd.DataFrame | None = None


def fit_score(model: Autoencoder, train: EvalSet | None, config: TrainConfig) -> ScoreState:
    """The latent Gaussian of the normal training images, when the score has a latent part."""
    state = ScoreState()
    if "latent" in score_parts(config.score):
        if train is None:
            raise ValueError("a latent score needs the training images")
        state.latent_mean, state.latent_precision = latent_gaussian(encode_images(model, train.images, train.index, config))
    return state


def evaluate_val(model: Autoencoder, val: EvalSet, config: TrainConfig, beta: float, train: EvalSet | None = None) -> Evaluation:
    """Validation metrics and the threshold, fitting the score on training normals and validation."""
    state = fit_score(model, train, config)
    terms = score_images(model, val.images, val.index, config, state)
    fit_standardisation(terms, val.labels, config.score, state)
    return Evaluation(val_metrics(val, terms, anomaly_score(terms, config.score, state), _val_loss(val, terms, config, beta)), state)


def evaluate_test(model: Autoencoder, test: EvalSet, config: TrainConfig, protocol: Protocol, evaluation: Evaluation) -> Evaluation:
    """Test metrics and per-image test scores of the score and threshold that validation fitted."""
    terms = score_images(model, test.images, test.index, config, evaluation.state)
    scores = anomaly_score(terms, config.score, evaluation.state)
    out = {**evaluation.metrics, **test_metrics(test, terms, scores, evaluation.metrics["threshold"], protocol)}
    table = pd.DataFrame(
        {
            "image_id": test.image_id,
            "dx": test.dx,
            "label": test.labels.astype(np.int8),
            "score": scores,
            "mse": terms["mse"],
            "ssim": terms["ssim"],
        }
    )
    if "neg_elbo" in terms:
        table["neg_elbo"] = terms["neg_elbo"]
    return Evaluation(out, evaluation.state, table)


def evaluate(
    model: Autoencoder,
    val: EvalSet,
    test: EvalSet,
    config: TrainConfig,
    protocol: Protocol,
    beta: float,
    train: EvalSet | None = None,
) -> Evaluation:
    """Validation, then test at the validation's threshold and fitted score: test labels choose nothing."""
    return evaluate_test(model, test, config, protocol, evaluate_val(model, val, config, beta, train))
