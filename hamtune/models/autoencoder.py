"""One model interface for AE and VAE: encode, decode, forward, sample; the encoder/decoder pair is pluggable."""

from __future__ import annotations

import torch
from torch import nn

LOGVAR_RANGE = (-10.0, 10.0)


class Autoencoder(nn.Module):
    """An encoder/decoder pair; variational when the encoder emits a mean and a log-variance.

    The loop and the evaluation call only this interface, so they never branch on MLP vs CNN.
    """

    def __init__(self, encoder: nn.Module, decoder: nn.Module, latent_dim: int, variational: bool, output: str):
        super().__init__()
        self.encoder, self.decoder = encoder, decoder
        self.latent_dim, self.variational = latent_dim, variational
        self.output = nn.Sigmoid() if output == "01" else nn.Tanh()

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        h = self.encoder(x)
        if not self.variational:
            return h, None
        mu, logvar = h.chunk(2, dim=1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        return self.output(self.decoder(z))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Reconstruction, code and log-variance: tensors only, so torch.export, ONNX and tracing take the
        model as it is. An AE's code has no variance: its log-variance has zero columns (no KL term)."""
        mu, logvar = self.encode(x)
        z = mu
        if logvar is None:
            logvar = mu[:, :0]
        elif self.training:
            z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        return self.decode(z), mu, logvar

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Images decoded from the prior N(0, I); only meaningful for a VAE."""
        device = next(self.parameters()).device
        z = torch.randn(n, self.latent_dim, generator=generator).to(device)
        return self.decode(z)
