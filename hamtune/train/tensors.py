"""uint8 NHWC images <-> the float NCHW tensors a model sees, done on the device."""

from __future__ import annotations

import torch


def to_input(batch: torch.Tensor, input_range: str) -> torch.Tensor:
    """uint8 (B,H,W,C) -> float (B,C,H,W) in [0,1] or [-1,1], converted where the batch already is."""
    x = batch.permute(0, 3, 1, 2).float().div_(255.0)
    return x.mul_(2.0).sub_(1.0) if input_range == "pm1" else x


def to_unit(x: torch.Tensor, input_range: str) -> torch.Tensor:
    """Model-space values back to [0,1], where MSE, PSNR and SSIM are reported."""
    return (x.float() + 1.0) / 2.0 if input_range == "pm1" else x.float()


def to_uint8(x: torch.Tensor, input_range: str) -> torch.Tensor:
    """Model-space (B,C,H,W) -> uint8 (B,H,W,C) for image grids."""
    return to_unit(x, input_range).clamp(0, 1).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu()
