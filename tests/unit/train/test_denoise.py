"""Denoising training: the model sees a corrupted copy of each training image and is trained to give back the clean
one; draws are seeded, scoring sees clean images, and a config without noise trains exactly as before."""

from __future__ import annotations

import pytest
import torch

from hamtune.errors import HamtuneError
from hamtune.train.augment import corrupt
from hamtune.train.config import TrainConfig
from hamtune.train.fused import unfusable
from hamtune.train.loop import train

KINDS = ("gaussian", "coarse", "mask")


def batch(input_range: str = "01") -> torch.Tensor:
    x = torch.rand((4, 3, 32, 32), generator=torch.Generator().manual_seed(0))
    return x * 2 - 1 if input_range == "pm1" else x


@pytest.mark.parametrize("kind", KINDS)
def test_each_noise_corrupts_at_its_level_and_repeats_with_its_draws(kind):
    x = batch()
    once = corrupt(x, kind, 0.2, "01", torch.Generator().manual_seed(1))
    again = corrupt(x, kind, 0.2, "01", torch.Generator().manual_seed(1))
    other = corrupt(x, kind, 0.2, "01", torch.Generator().manual_seed(2))
    assert once.shape == x.shape and torch.equal(once, again) and not torch.equal(once, other)
    assert 0 < (once - x).abs().mean() < (corrupt(x, kind, 0.6, "01", torch.Generator().manual_seed(1)) - x).abs().mean()


def test_gaussian_noise_has_its_std_on_the_unit_scale_in_either_input_range():
    for input_range, scale in (("01", 1.0), ("pm1", 2.0)):
        x = batch(input_range)
        noise = corrupt(x, "gaussian", 0.1, input_range, torch.Generator().manual_seed(0)) - x
        assert noise.std().item() == pytest.approx(0.1 * scale, rel=0.05)


def test_a_mask_greys_whole_cells_and_leaves_the_rest_untouched():
    x = batch()
    masked = corrupt(x, "mask", 0.5, "01", torch.Generator().manual_seed(0))
    hidden = masked == 0.5
    cells = hidden[:, 0].reshape(4, 8, 4, 8, 4).permute(0, 1, 3, 2, 4).flatten(3)  # (B, 8, 8, 16 pixels): one cell each
    assert (cells.all(-1) | ~cells.any(-1)).all()  # a cell is grey through and through, or not at all
    assert 0.3 < cells.all(-1).float().mean() < 0.7
    assert torch.equal(masked[~hidden], x[~hidden])
    assert torch.equal(corrupt(x, "mask", 1.0, "01", torch.Generator()), torch.full_like(x, 0.5))


def test_denoising_trains_on_other_inputs_and_an_absent_noise_trains_as_before(prepared):
    base = dict(image_size=28, epochs=2, latent_dim=16, cnn_channels=8, batch_size=32, lr=2e-3, arch="cnn")
    plain = train(TrainConfig(**base), prepared)
    unused_level = train(TrainConfig(**base, noise_level=0.5), prepared)  # a level without a noise changes nothing
    denoised = train(TrainConfig(**base, noise="coarse", noise_level=0.2), prepared)
    assert [h["train_loss"] for h in plain.history] == [h["train_loss"] for h in unused_level.history]
    assert denoised.status == "completed" and denoised.history[0]["train_loss"] != plain.history[0]["train_loss"]
    assert plain.run.config.applicable()["noise_level"] is None and denoised.run.config.applicable()["noise_level"] == 0.2


def test_noise_is_checked_when_read_and_a_denoising_cnn_is_not_fused():
    with pytest.raises(HamtuneError, match="noise must be one of none, gaussian, coarse, mask"):
        TrainConfig.from_dict({"noise": "salt"})
    with pytest.raises(HamtuneError, match="noise_level must be between 0 and 1"):
        TrainConfig.from_dict({"noise": "gaussian", "noise_level": 2})
    configs = [TrainConfig(noise="mask", seed=s) for s in (0, 1)]
    assert unfusable(configs) == "noise=mask: the grouped step trains on clean inputs"
