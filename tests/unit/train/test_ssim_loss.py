"""An autoencoder trained on an SSIM loss: the loss is 1 - SSIM on [0, 1] (plus alpha-weighted L1 for ssim_l1) in
either input range, it is what training and the validation loss read, and a VAE is refused it when read."""

from __future__ import annotations

import pytest
import torch

from hamtune.errors import HamtuneError
from hamtune.train import metrics
from hamtune.train.config import TrainConfig
from hamtune.train.loop import train
from hamtune.train.losses import SSIM_L1_ALPHA, per_image_terms, training_loss


def pair() -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    x = torch.rand((4, 3, 32, 32), generator=generator)
    return (x + 0.1 * torch.randn(x.shape, generator=generator)).clamp(0, 1), x


def test_the_ssim_losses_are_one_minus_ssim_on_the_unit_scale_in_either_input_range():
    recon, x = pair()
    expected = 1 - metrics.ssim(recon, x)
    l1 = (recon - x).abs().flatten(1).mean(1)
    for input_range, to_model in (("01", lambda t: t), ("pm1", lambda t: t * 2 - 1)):
        ssim = per_image_terms(to_model(recon), to_model(x), None, None, "ssim", input_range)["structural"]
        mixed = per_image_terms(to_model(recon), to_model(x), None, None, "ssim_l1", input_range)["structural"]
        assert torch.allclose(ssim, expected, atol=1e-6)
        assert torch.allclose(mixed, SSIM_L1_ALPHA * expected + (1 - SSIM_L1_ALPHA) * l1, atol=1e-6)
    terms = per_image_terms(recon, x, None, None, "ssim")
    assert training_loss(terms, False, "ssim", 0.0, 3 * 32 * 32) == pytest.approx(expected.mean().item(), abs=1e-6)
    assert "structural" not in per_image_terms(recon, x, None, None, "mse")


def test_an_ssim_loss_trains_an_autoencoder_and_is_its_validation_loss(prepared):
    base = dict(image_size=28, epochs=2, latent_dim=16, cnn_channels=8, batch_size=32, lr=2e-3, arch="cnn")
    result = train(TrainConfig(**base, recon_loss="ssim_l1"), prepared)
    assert result.status == "completed"
    losses = [h["train_loss"] for h in result.history]
    assert all(0 < loss < 1 for loss in losses) and losses[1] < losses[0]
    assert 0 < result.history[-1]["val_loss"] < 1 and result.history[-1]["val_loss"] != result.history[-1]["val_mse"]


def test_a_vae_is_refused_an_ssim_loss_when_the_config_is_read():
    with pytest.raises(HamtuneError, match="recon_loss=ssim needs kind=ae"):
        TrainConfig.from_dict({"kind": "vae", "recon_loss": "ssim"})
