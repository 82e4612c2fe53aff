"""AE and VAE, each MLP or CNN, behind one interface; `build_model` maps a config to a module."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from torch import nn

from hamtune.models.autoencoder import Autoencoder
from hamtune.models.cnn import build_cnn
from hamtune.models.mlp import build_mlp

if TYPE_CHECKING:  # for the annotation only: models sit below train and never import it at run time
    from hamtune.train.config import TrainConfig

BUILDERS: dict[str, Callable[..., tuple[nn.Module, nn.Module]]] = {"mlp": build_mlp, "cnn": build_cnn}


def build_model(config: TrainConfig, shape: tuple[int, int, int], models: int = 1) -> Autoencoder:
    """A fresh model for `config` and images of shape (C, H, W); with `models` = K > 1 (CNN AEs only),
    K such models side by side in one module (hamtune.models.grouped), trained by hamtune.train.fused."""
    if config.arch == "mlp":
        width, depth = config.mlp_width, config.mlp_depth
    else:
        width, depth = config.cnn_channels, config.cnn_blocks
    if models > 1 and config.arch != "cnn":
        raise ValueError(f"arch={config.arch} has no grouped form: only CNNs can hold {models} models side by side")
    grouped = {"models": models} if models > 1 else {}
    encoder, decoder = BUILDERS[config.arch](
        shape, config.latent_dim, config.kind == "vae", width, depth, config.norm, config.dropout, **grouped
    )
    return Autoencoder(encoder, decoder, config.latent_dim, config.kind == "vae", config.input_range)


__all__ = ["Autoencoder", "build_model"]
