"""Training augmentation that respects dermoscopy: a lesion photographed from above has no canonical
orientation, so flips and 90-degree rotations give new, equally real images; a small per-image gain
mimics the dermoscope's white balance and exposure. And the corrupted inputs of denoising training."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from hamtune.train.tensors import to_unit


def augment(x: torch.Tensor, mode: str, color_jitter: float, input_range: str, generator: torch.Generator) -> torch.Tensor:
    """A randomly flipped (`flips`), or flipped and transposed (`dihedral`: all 8 symmetries of the
    square), copy of a (B,C,H,W) batch, each image drawn on its own; with `color_jitter` > 0 each image's
    channels are also scaled by gains in [1 - j, 1 + j]. Draws come from `generator` (reproducible)."""
    n = len(x)
    if mode != "none":
        draw = torch.randint(0, 8, (n,), generator=generator).to(x.device)[:, None, None, None]
        x = torch.where((draw & 1).bool(), x.flip(-1), x)
        x = torch.where((draw & 2).bool(), x.flip(-2), x)
        if mode == "dihedral":
            x = torch.where((draw & 4).bool(), x.transpose(-1, -2), x)
    if color_jitter > 0:
        brightness = 1 + (torch.rand(n, 1, 1, 1, generator=generator) * 2 - 1) * color_jitter
        balance = 1 + (torch.rand(n, x.shape[1], 1, 1, generator=generator) * 2 - 1) * color_jitter / 2
        unit = (to_unit(x, input_range) * (brightness * balance).to(x.device)).clamp_(0, 1)
        x = unit.mul(2).sub(1) if input_range == "pm1" else unit
    return x


COARSE = 16  # the coarse noise's side: noise drawn at 16x16 and upsampled, blobs the size of a lesion's structures
MASK_PATCHES = 8  # the mask's grid: an image is cut into 8x8 patches, each hidden with probability `level`


def corrupt(x: torch.Tensor, kind: str, level: float, input_range: str, generator: torch.Generator) -> torch.Tensor:
    """A corrupted copy of a (B,C,H,W) batch for denoising training: the model sees it and must give back the clean
    batch, so it cannot copy its input and learns what normal skin looks like. `gaussian`: i.i.d. noise of std
    `level` per pixel; `coarse`: noise of std `level` drawn on a 16x16 grid and upsampled (Kascenas et al. 2022
    found this coarse noise the strong one for anomaly detection); `mask`: each cell of an 8x8 grid set to grey with
    probability `level`. `level` is on the [0, 1] pixel scale whatever `input_range`."""
    n, c, h, w = x.shape
    scale = 2.0 if input_range == "pm1" else 1.0
    if kind == "gaussian":
        return x + torch.randn(x.shape, generator=generator).to(x.device) * (level * scale)
    if kind == "coarse":
        low = torch.randn((n, c, COARSE, COARSE), generator=generator).to(x.device)
        return x + F.interpolate(low, size=(h, w), mode="bilinear", align_corners=False).to(x.dtype) * (level * scale)
    if kind == "mask":
        hidden = (torch.rand((n, 1, MASK_PATCHES, MASK_PATCHES), generator=generator) < level).to(x.device, x.dtype)
        hidden = F.interpolate(hidden, size=(h, w), mode="nearest")
        grey = 0.0 if input_range == "pm1" else 0.5
        return x * (1 - hidden) + grey * hidden
    raise ValueError(f"unknown noise {kind!r}")
