"""Strided-conv encoder and upsample+conv decoder that fit any square size (28, 32, 64, 128 px...)."""

from __future__ import annotations

from torch import nn

from hamtune.models.layers import norm


def _norm(kind: str, channels: int) -> nn.Module:
    return norm(kind, channels, nn.BatchNorm2d)


def channel_plan(base: int, blocks: int) -> list[int]:
    """Channels double per down-sampling block, capped at 8x the base."""
    return [base * min(2**i, 8) for i in range(blocks)]


def spatial_plan(size: int, blocks: int) -> list[int]:
    """Feature-map sizes after each stride-2 block (ceil, so odd sizes like 7 are fine)."""
    sizes = [size]
    for _ in range(blocks):
        sizes.append((sizes[-1] + 1) // 2)
    return sizes


def build_cnn(
    shape: tuple[int, int, int], latent_dim: int, variational: bool, base: int, blocks: int, norm: str, dropout: float
) -> tuple[nn.Module, nn.Module]:
    """Encoder (C,H,W) -> latent (x2 for a VAE) and a decoder that upsamples back to exactly (C,H,W)."""
    channels, height, _ = shape
    plan, sizes = channel_plan(base, blocks), spatial_plan(height, blocks)
    last, flat = plan[-1], plan[-1] * sizes[-1] ** 2
    down: list[nn.Module] = []
    for c_in, c_out in zip([channels] + plan, plan):
        down += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), _norm(norm, c_out), nn.ReLU(inplace=True)]
    out = latent_dim * (2 if variational else 1)
    encoder = nn.Sequential(*down, nn.Flatten(), nn.Dropout(dropout) if dropout else nn.Identity(), nn.Linear(flat, out))
    up: list[nn.Module] = [nn.Linear(latent_dim, flat), nn.ReLU(inplace=True), nn.Unflatten(1, (last, sizes[-1], sizes[-1]))]
    reversed_plan = plan[::-1]
    for c_in, c_out, size in zip(reversed_plan, reversed_plan[1:], sizes[-2:0:-1]):
        up += [
            nn.Upsample(size=(size, size), mode="nearest"),
            nn.Conv2d(c_in, c_out, 3, padding=1),
            _norm(norm, c_out),
            nn.ReLU(inplace=True),
        ]
    up += [nn.Upsample(size=(height, height), mode="nearest"), nn.Conv2d(plan[0], channels, 3, padding=1)]
    return encoder, nn.Sequential(*up)
