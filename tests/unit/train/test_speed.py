"""The faster paths (channels_last, the phase-form output layer, patience) give the metrics of the plain ones."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from hamtune.data.splits import get_protocol
from hamtune.models import build_model
from hamtune.models.cnn import UpsampleConv2d
from hamtune.train.config import TrainConfig
from hamtune.train.evaluate import evaluate
from hamtune.train.loop import build_run, train
from hamtune.train.losses import per_image_terms, training_loss
from hamtune.train.tensors import to_input


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
    for a, b in zip(
        torch.autograd.grad(got.square().sum(), [x, layer.weight, layer.bias]),
        torch.autograd.grad(expected.square().sum(), [x, layer.weight, layer.bias]),
    ):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-10)


def test_weights_of_the_plain_layers_load_and_give_the_same_reconstructions():
    """A decoder built the way earlier versions built it (nn.Upsample, then nn.Conv2d) has the same
    parameter names: weights saved by either load into the other, and both reconstruct alike."""
    config = TrainConfig(arch="cnn", cnn_blocks=3, cnn_channels=8, image_size=64)
    model = build_model(config.model_spec(), (3, 64, 64)).eval()
    old = build_model(config.model_spec(), (3, 64, 64)).eval()
    layer = old.decoder[-1]
    old.decoder[-2] = nn.Upsample(size=(64, 64), mode="nearest")
    old.decoder[-1] = nn.Conv2d(layer.in_channels, layer.out_channels, 3, padding=1)
    old.load_state_dict(model.state_dict())
    model.load_state_dict(old.state_dict())
    x = torch.rand(4, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], old(x)[0], rtol=0, atol=1e-6)


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_channels_last_evaluates_the_same_weights_to_the_same_metrics(prepared, kind):
    config = small(kind=kind, epochs=1)
    fast, _ = build_run(config, prepared, None, torch.device("cpu"))
    plain, _ = build_run(config.replace(channels_last=False), prepared, None, torch.device("cpu"))
    assert fast.model.encoder[0].weight.is_contiguous(memory_format=torch.channels_last)
    assert plain.model.encoder[0].weight.is_contiguous()
    plain.model.load_state_dict(fast.model.state_dict())
    protocol = get_protocol(config.protocol)
    a = evaluate(fast.model.eval(), fast.val, fast.test, config, protocol, 1.0, fast.train_set).metrics
    b = evaluate(plain.model.eval(), plain.val, plain.test, config, protocol, 1.0, plain.train_set).metrics
    assert a.keys() == b.keys()
    for key in a:
        assert math.isclose(a[key], b[key], rel_tol=1e-5, abs_tol=1e-6), (key, a[key], b[key])


@pytest.mark.parametrize("kind", ["ae", "vae"])
def test_a_training_step_in_channels_last_computes_the_same_loss_and_gradients(prepared, kind):
    config = small(kind=kind)
    fast, _ = build_run(config, prepared, None, torch.device("cpu"))
    plain, _ = build_run(config.replace(channels_last=False), prepared, None, torch.device("cpu"))
    plain.model.load_state_dict(fast.model.state_dict())
    x = to_input(fast.val.images[torch.as_tensor(fast.val.index[:32])], config.input_range)
    losses, grads = [], []
    for run in (fast, plain):
        torch.manual_seed(0)  # the VAE's reparameterisation noise
        recon, mu, logvar = run.model.train()(x)
        loss = training_loss(per_image_terms(recon, x, mu, logvar, "mse"), run.model.variational, "mse", 1.0, x[0].numel())
        losses.append(loss.item())
        grads.append(torch.autograd.grad(loss, list(run.model.parameters())))
    assert math.isclose(*losses, rel_tol=1e-5)
    scale = max(float(g.abs().max()) for g in grads[1])  # biases before batch norm have (float noise around) zero gradient
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-5 * scale)


def test_an_epoch_in_channels_last_trains_an_ae_to_the_metrics_of_the_contiguous_layout(prepared):
    """From the same initial weights, one epoch in either layout gives the same loss and metrics up to the
    float error of a different summation order. (Later epochs, and VAEs sooner, amplify it: Adam turns
    the sign noise of near-zero gradients into whole steps, as any change of kernel would.)"""
    fast = train(small(epochs=1), prepared).final
    plain = train(small(epochs=1, channels_last=False), prepared).final
    assert math.isclose(fast["train_loss"], plain["train_loss"], rel_tol=1e-4)  # 1.4e-5 measured on CI's CPU, 0 here
    for key in ("val_mse", "val_ssim", "test_mse", "test_ssim"):
        assert math.isclose(fast[key], plain[key], rel_tol=2e-3), (key, fast[key], plain[key])
    for key in ("val_auroc", "test_auroc"):  # a rank statistic: near-tied scores may swap a pair or two
        assert abs(fast[key] - plain[key]) < 0.01, (key, fast[key], plain[key])


def test_patience_stops_a_run_that_stopped_improving(prepared):
    """Weights that barely move (lr 1e-8, no norm layers) never improve on epoch 1: patience 2 ends the run
    after epoch 3, as completed, delivering epoch 1."""
    frozen = dict(lr=1e-8, weight_decay=0.0, norm="none")
    result = train(small(epochs=10, patience=2, **frozen), prepared)
    assert result.status == "completed" and len(result.history) == 3
    assert result.run.best.epoch == 1 and result.final["epoch"] == 1
    assert result.history[-1]["status"] == "completed" and "patience 2" in result.reason
    whole = train(small(epochs=3, **frozen), prepared)
    assert [h["val_auroc"] for h in whole.history] == [h["val_auroc"] for h in result.history]


def test_a_resumed_run_that_ran_out_of_patience_trains_no_further(prepared, tmp_path):
    config = small(epochs=10, patience=1, lr=1e-8, weight_decay=0.0, norm="none")
    first = train(config, prepared, on_epoch=lambda metrics, run: run.save(tmp_path / "ckpt"))
    assert len(first.history) == 2
    again = train(config, prepared, resume_from=tmp_path / "ckpt")
    assert len(again.history) == 2 and again.status == "completed" and again.run.best.epoch == 1
