"""Training augmentation that respects dermoscopy: a lesion photographed from above has no canonical
orientation, so flips and 90-degree rotations give new, equally real images; a small per-image gain
mimics the dermoscope's white balance and exposure."""

from __future__ import annotations

import torch

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
