"""AE and VAE, each MLP or CNN, behind one interface; `build_model` maps a ModelSpec (TrainConfig.model_spec()) to a module."""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from hamtune.models.autoencoder import Autoencoder
from hamtune.models.cnn import build_cnn
from hamtune.models.mlp import build_mlp
from hamtune.models.spec import ModelSpec

BUILDERS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(spec: ModelSpec, shape: tuple[int, int, int], models: int = 1) -> Autoencoder:
    """A fresh model for `spec` (TrainConfig.model_spec()) and images of shape (C, H, W); with `models` = K > 1 (CNN
    AEs only), K such models side by side in one module (hamtune.models.grouped), trained by hamtune.train.fused."""
    if models > 1 and spec.arch != "cnn":
        raise ValueError(f"arch={spec.arch} has no grouped form: only CNNs can hold {models} models side by side")
    grouped = {"models": models} if models > 1 else {}
    encoder, decoder = BUILDERS[spec.arch](
        shape, spec.latent_dim, spec.variational, spec.width, spec.depth, spec.norm, spec.dropout, **grouped
    )
    return Autoencoder(encoder, decoder, spec.latent_dim, spec.variational, spec.input_range)


__all__ = ["Autoencoder", "ModelSpec", "build_model"]
