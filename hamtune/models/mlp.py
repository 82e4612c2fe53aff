"""Fully connected encoder/decoder, as in the original notebook (hidden sizes halve layer by layer)."""

from __future__ import annotations

import math

from torch import nn

from hamtune.models.layers import norm


def hidden_sizes(width: int, depth: int, latent_dim: int) -> list[int]:
    return [max(width // 2**i, latent_dim) for i in range(depth)]


def _norm(kind: str, features: int) -> nn.Module:
    return norm(kind, features, nn.BatchNorm1d)


def _stack(sizes: list[int], norm: str, dropout: float) -> list[nn.Module]:
    layers: list[nn.Module] = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [nn.Linear(fan_in, fan_out), _norm(norm, fan_out), nn.ReLU(inplace=True)]
        if dropout:
            layers.append(nn.Dropout(dropout))
    return layers


def build_mlp(
    shape: tuple[int, int, int], latent_dim: int, variational: bool, width: int, depth: int, norm: str, dropout: float
) -> tuple[nn.Module, nn.Module]:
    """Encoder (C,H,W) -> latent (x2 for a VAE) and the mirrored decoder latent -> (C,H,W)."""
    flat = math.prod(shape)
    hidden = hidden_sizes(width, depth, latent_dim)
    out = latent_dim * (2 if variational else 1)
    encoder = nn.Sequential(nn.Flatten(), *_stack([flat] + hidden, norm, dropout), nn.Linear(hidden[-1], out))
    decoder = nn.Sequential(*_stack([latent_dim] + hidden[::-1], norm, dropout), nn.Linear(hidden[0], flat), nn.Unflatten(1, shape))
    return encoder, decoder
