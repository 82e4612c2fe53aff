"""Every registered architecture passes the same contract: shapes, the VAE's code, its range, gradients, and the
exported score graph computing exactly the evaluation's score."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest
import torch

from hamtune.export.programs import ScoreGraph
from hamtune.models import BUILDERS, build_model
from hamtune.train.config import CHOICES, TrainConfig
from hamtune.train.evaluate import ScoreState, anomaly_score, score_images

CASES = list(itertools.product(sorted(BUILDERS), ("ae", "vae"), CHOICES["norm"], CHOICES["input_range"]))


@pytest.mark.parametrize(("arch", "kind", "norm", "input_range"), CASES)
def test_every_architecture_reconstructs_its_input_shape_in_its_range(arch, kind, norm, input_range):
    torch.manual_seed(0)
    config = TrainConfig(
        arch=arch,
        kind=kind,
        norm=norm,
        input_range=input_range,
        latent_dim=6,
        cnn_channels=8,
        cnn_blocks=2,
        mlp_width=32,
        mlp_depth=1,
        image_size=16,
    )
    model = build_model(config.model_spec(), (3, 16, 16))
    x = torch.rand(4, 3, 16, 16) * (2 if input_range == "pm1" else 1) - (1 if input_range == "pm1" else 0)
    recon, mu, logvar = model(x)
    assert recon.shape == x.shape and mu.shape == (4, 6)
    assert logvar.shape == ((4, 6) if kind == "vae" else (4, 0))
    low, high = (-1, 1) if input_range == "pm1" else (0, 1)
    assert recon.min() >= low and recon.max() <= high
    recon.sum().backward()
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)
    model.eval()
    assert torch.equal(model.encode(x)[0], model(x)[1])  # eval: the code is the mean, not a sample


@pytest.mark.parametrize("score", ["mse", "ssim", "mse+ssim", "mse+ssim+latent", "elbo+ssim"])
def test_the_exported_score_graph_is_the_evaluations_score(score):
    torch.manual_seed(1)
    config = TrainConfig(arch="cnn", kind="vae", score=score, tta=True, latent_dim=5, cnn_channels=8, cnn_blocks=2, image_size=16)
    model = build_model(config.model_spec(), (3, 16, 16)).eval()
    images = torch.randint(0, 256, (6, 16, 16, 3), dtype=torch.uint8)
    generator = torch.Generator().manual_seed(2)
    a = torch.randn(5, 5, generator=generator)
    state = ScoreState(
        torch.randn(5, generator=generator),
        a @ a.T + torch.eye(5),
        {"mse": 0.1, "ssim": 0.3, "latent": 4.0, "elbo": 900.0},
        {"mse": 0.05, "ssim": 0.1, "latent": 2.0, "elbo": 50.0},
    )
    expected = anomaly_score(score_images(model, images, np.arange(6), config, state), score, state)
    with torch.no_grad():
        graph = ScoreGraph(model, config, state)(images).double().numpy()
    np.testing.assert_allclose(graph, expected, rtol=1e-6, atol=1e-6)


def test_the_latent_distance_is_the_mahalanobis_distance_of_the_precision():
    generator = torch.Generator().manual_seed(3)
    a = torch.randn(4, 4, generator=generator, dtype=torch.float64)
    precision = a @ a.T + 0.1 * torch.eye(4, dtype=torch.float64)
    state = ScoreState(torch.zeros(4), precision.float())
    mean, whitening = state.latent_whitening()
    codes = torch.randn(7, 4, generator=generator)
    direct = torch.einsum("ni,ij,nj->n", codes.double(), precision, codes.double())
    np.testing.assert_allclose(((codes - mean) @ whitening).pow(2).sum(1).numpy(), direct.numpy(), rtol=1e-5)
    assert dataclasses.replace(state, latent_mean=None).latent_whitening() is None
