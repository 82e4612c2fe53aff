"""The normalisation choice shared by the MLP and CNN builders."""

from __future__ import annotations

import math

from torch import nn


def norm(kind: str, features: int, batch_norm: type[nn.Module]) -> nn.Module:
    """none | batch | group; group norm uses up to 8 groups that divide the features."""
    if kind == "batch":
        return batch_norm(features)
    if kind == "group":
        return nn.GroupNorm(math.gcd(8, features), features)
    return nn.Identity()
