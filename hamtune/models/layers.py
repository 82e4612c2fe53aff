"""The normalisation choice shared by the MLP and CNN builders."""

from __future__ import annotations

import math

from torch import nn


def norm(kind: str, features: int, batch_norm: type[nn.Module], models: int = 1) -> nn.Module:
    """none | batch | group; group norm uses up to 8 groups that divide the features. For `models`
    side by side (hamtune.models.grouped) each model's channels are normalised on their own: a batch
    norm is per channel already, a group norm gets `models` times the groups."""
    if kind == "batch":
        return batch_norm(models * features)
    if kind == "group":
        return nn.GroupNorm(models * math.gcd(8, features), models * features)
    return nn.Identity()
