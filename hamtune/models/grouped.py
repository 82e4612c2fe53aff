"""Layers that hold K models of one shape side by side, so one kernel call trains all of them
(horizontal fusion, as HFTA: Wang et al., MLSys 2021).

A group's feature maps are (B, K*C, H, W): model k owns channels [k*C, (k+1)*C), so a convolution
with groups=K, and a batch norm over K*C channels, are exactly K separate ones. Between the
encoder's flatten and the decoder's unflatten a group's features are (K, B, F), where a Linear is a
batched matrix product. With K=1 the builders use torch's own layers (same state-dict keys and
shapes as ever); parameters of a K-group are the K models' parameters concatenated along dim 0
(convolutions, norms) or stacked on a new dim 0 (Linear), which `member_view` undoes.
"""

from __future__ import annotations

import torch
from torch import nn


class GroupedLinear(nn.Module):
    """K independent Linear layers on (K, B, in) -> (K, B, out); weight (K, out, in) as each nn.Linear has it."""

    def __init__(self, models: int, in_features: int, out_features: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(models, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(models, out_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class GroupedFlatten(nn.Module):
    """(B, K*C, H, W) -> (K, B, C*H*W): each model's features flattened in nn.Flatten's (C, H, W) order."""

    def __init__(self, models: int):
        super().__init__()
        self.models = models

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.models, -1)).flatten(2).transpose(0, 1)


class GroupedUnflatten(nn.Module):
    """(K, B, C*H*W) -> (B, K*C, H, W), the inverse of GroupedFlatten."""

    def __init__(self, shape: tuple[int, int, int]):
        super().__init__()
        self.shape = shape

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.transpose(0, 1).unflatten(2, self.shape).flatten(1, 2)


def linear(models: int, in_features: int, out_features: int) -> nn.Module:
    return nn.Linear(in_features, out_features) if models == 1 else GroupedLinear(models, in_features, out_features)


def flatten(models: int) -> nn.Module:
    return nn.Flatten() if models == 1 else GroupedFlatten(models)


def unflatten(models: int, shape: tuple[int, int, int]) -> nn.Module:
    return nn.Unflatten(1, shape) if models == 1 else GroupedUnflatten(shape)


def member_view(grouped: torch.Tensor, single_shape: torch.Size, models: int, k: int) -> torch.Tensor:
    """Model k's part of a grouped parameter or buffer, as a view with the single model's shape (a
    0-d buffer, such as a batch norm's step count, is shared by all members)."""
    if grouped.dim() == 0:
        return grouped
    if grouped.dim() == len(single_shape) + 1:
        return grouped[k]
    return grouped.unflatten(0, (models, -1))[k]


def stack_members(tensors: list[torch.Tensor], grouped_shape: torch.Size) -> torch.Tensor:
    """The grouped tensor of K members' tensors (the inverse of `member_view`)."""
    if len(grouped_shape) == 0:
        return tensors[0].clone()
    if len(grouped_shape) == tensors[0].dim() + 1:
        return torch.stack(tensors)
    return torch.cat(tensors)
