"""The faster paths (channels_last, the phase-form output layer, patience) give the metrics of the plain ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from hamtune.models import build_model
from hamtune.models.cnn import UpsampleConv2d
from hamtune.train.config import TrainConfig
from hamtune.train.loop import train

TIMING = ("epoch_time_s", "train_images_per_s")
MEASURED = ("val_auroc", "val_mse", "val_ssim", "test_auroc", "test_mse", "test_ssim", "train_loss", "threshold")


def small(**changes) -> TrainConfig:
    base = dict(image_size=28, epochs=2, latent_dim=16, cnn_channels=8, batch_size=32, lr=2e-3, arch="cnn")
    return TrainConfig(**{**base, **changes})


@pytest.mark.parametrize(("low", "size", "out"), [(14, 28, 3), (32, 64, 1), (4, 7, 3), (16, 32, 16)])
def test_upsample_conv_computes_upsampling_then_convolution(low, size, out):
    """Phase form (exact doubling, few channels) and plain form agree with F.interpolate + F.conv2d, gradients too."""
    torch.manual_seed(0)
    layer = UpsampleConv2d(8, out, size).double()
    x = torch.randn(3, 8, low, low, dtype=torch.float64, requires_grad=True)
    expected = F.conv2d(F.interpolate(x, size=(size, size), mode="nearest"), layer.weight, layer.bias, padding=1)
    got = layer(x)
    assert got.shape == expected.shape == (3, out, size, size)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)
    for a, b in zip(torch.autograd.grad(got.square().sum(), [x, layer.weight, layer.bias]),
                    torch.autograd.grad(expected.square().sum(), [x, layer.weight, layer.bias])):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_cnn_parameters_keep_their_names():
    """Weights saved before the output layer became UpsampleConv2d load unchanged (same keys, same shapes)."""
    model = build_model(TrainConfig(arch="cnn", cnn_blocks=3, cnn_channels=8, image_size=64), (3, 64, 64))
    decoder = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("decoder.")}
    assert decoder["decoder.14.weight"] == (3, 8, 3, 3) and decoder["decoder.14.bias"] == (3,)
    assert "decoder.13.weight" not in decoder and max(int(k.split(".")[1]) for k in decoder) == 14


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_channels_last_gives_the_metrics_of_the_contiguous_layout(prepared, kind):
    fast = train(small(kind=kind), prepared)
    plain = train(small(kind=kind, channels_last=False), prepared)
    assert fast.run.model.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.run.model.encoder[0].weight.is_contiguous()
    for a, b in zip(fast.history, plain.history):
        for key in MEASURED:
            assert math.isclose(a[key], b[key], rel_tol=1e-3, abs_tol=1e-4), (key, a[key], b[key])


def test_channels_last_runs_are_deterministic_on_cpu(prepared):
    a, b = train(small(), prepared), train(small(), prepared)
    strip = [{k: v for k, v in h.items() if k not in TIMING} for h in a.history]
    assert strip == [{k: v for k, v in h.items() if k not in TIMING} for h in b.history]


def test_patience_stops_a_run_that_stopped_improving(prepared):
    """Weights that cannot move (lr 1e-12, no norm layers) never improve on epoch 1: patience 2 ends the run
    after epoch 3, as completed, delivering epoch 1."""
    frozen = dict(lr=1e-12, weight_decay=0.0, norm="none")
    result = train(small(epochs=10, patience=2, **frozen), prepared)
    assert result.status == "completed" and len(result.history) == 3
    assert result.run.best.epoch == 1 and result.final["epoch"] == 1
    assert result.history[-1]["status"] == "completed" and "patience 2" in result.reason
    whole = train(small(epochs=3, **frozen), prepared)
    assert [h["val_auroc"] for h in whole.history] == [h["val_auroc"] for h in result.history]


def test_a_resumed_run_that_ran_out_of_patience_trains_no_further(prepared, tmp_path):
    config = small(epochs=10, patience=1, lr=1e-12, weight_decay=0.0, norm="none")
    first = train(config, prepared, on_epoch=lambda metrics, run: run.save(tmp_path / "ckpt"))
    assert len(first.history) == 2
    again = train(config, prepared, resume_from=tmp_path / "ckpt")
    assert len(again.history) == 2 and again.status == "completed" and again.run.best.epoch == 1
