"""What a model is built from, and nothing more: the models read this, never a whole TrainConfig."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelSpec:
    """An AE or VAE, MLP or CNN: its code size, width and depth (MLP hidden units and layers, or CNN base channels
    and blocks), normalisation, dropout, and the range its inputs and outputs live in."""

    kind: str = "ae"
    arch: str = "cnn"
    latent_dim: int = 32
    width: int = 32
    depth: int = 3
    norm: str = "batch"
    dropout: float = 0.0
    input_range: str = "01"

    @property
    def variational(self) -> bool:
        return self.kind == "vae"
