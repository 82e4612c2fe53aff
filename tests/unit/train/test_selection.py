"""What a run delivers and how it scores: the best validation epoch, augmentation, and scores beyond
pixel MSE; nothing is chosen or fitted on test."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError
from hamtune.results.store import best_epoch
from hamtune.train.augment import augment
from hamtune.train.config import TrainConfig
from hamtune.train.evaluate import EvalSet, evaluate
from hamtune.train.loop import train


def small(**changes) -> TrainConfig:
    base = dict(image_size=28, epochs=3, latent_dim=16, cnn_channels=8, mlp_width=128, batch_size=32, lr=2e-3)
    return TrainConfig(**{**base, **changes})


def test_a_run_delivers_its_best_validation_epoch_and_tests_only_that_model(prepared):
    result = train(small(arch="mlp", epochs=6, lr=3e-3), prepared)
    history = result.history
    best = best_epoch(history, "val_auroc", "max")
    assert result.final is best and best["val_auroc"] == max(h["val_auroc"] for h in history)
    running = -math.inf
    for row in history:  # test is measured exactly at the epochs that improved validation
        improved = row["val_auroc"] > running
        running = max(running, row["val_auroc"])
        assert ("test_auroc" in row) == improved, row["epoch"]
    again = evaluate(result.run.model, result.run.val, result.run.test, result.config, get_protocol("cancer"), 0.0)
    assert again.metrics["test_auroc"] == best["test_auroc"] and again.metrics["threshold"] == best["threshold"]
    np.testing.assert_array_equal(again.scores["score"].to_numpy(), result.scores["score"].to_numpy())


def test_test_every_epoch_measures_test_each_epoch_and_changes_no_validation_metric(prepared):
    lazy = train(small(arch="mlp"), prepared)
    eager = train(small(arch="mlp", test_every_epoch=True), prepared)
    assert all("test_auroc" in row for row in eager.history)
    for a, b in zip(lazy.history, eager.history):
        assert {k: v for k, v in a.items() if k.startswith("val_")} == {k: v for k, v in b.items() if k.startswith("val_")}


@pytest.mark.parametrize("mode, count", [("flips", 4), ("dihedral", 8)])
def test_augmentation_draws_symmetries_of_each_image(mode, count):
    x = torch.rand(64, 3, 8, 8)
    out = augment(x, mode, 0.0, "01", torch.Generator().manual_seed(0))
    views = [x, x.flip(-1), x.flip(-2), x.flip(-1).flip(-2)]
    views += [v.transpose(-1, -2) for v in views]
    seen = set()
    for i in range(len(x)):
        matches = [k for k, v in enumerate(views) if torch.equal(out[i], v[i])]
        assert matches, f"image {i} is not a symmetry of its input"
        seen.add(matches[0])
    assert len(seen) == count
    again = augment(x, mode, 0.0, "01", torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_colour_jitter_stays_in_range_and_within_its_gain():
    x = torch.rand(32, 3, 8, 8) * 2 - 1
    out = augment(x, "none", 0.2, "pm1", torch.Generator().manual_seed(1))
    assert out.min() >= -1 and out.max() <= 1 and not torch.equal(out, x)
    gain = ((out + 1) / 2).sum((2, 3)) / ((x + 1) / 2).sum((2, 3))
    assert ((gain > 0.7 - 1e-4) & (gain < 1.3 + 1e-4)).all()


def test_augmented_training_is_reproducible_and_differs_from_plain(prepared):
    a = train(small(arch="cnn", epochs=1, augment="dihedral", color_jitter=0.1), prepared)
    b = train(small(arch="cnn", epochs=1, augment="dihedral", color_jitter=0.1), prepared)
    plain = train(small(arch="cnn", epochs=1), prepared)
    assert a.history[0]["train_loss"] == b.history[0]["train_loss"] != plain.history[0]["train_loss"]


@pytest.mark.parametrize(
    "score, tta", [("ssim", False), ("latent", False), ("mse+latent", True), ("ssim+latent", False), ("mse+ssim", True)]
)
def test_scores_beyond_mse_are_fitted_without_test_labels(prepared, score, tta):
    result = train(small(arch="cnn", epochs=2, score=score, tta=tta), prepared)
    assert result.status == "completed"
    final = result.final
    assert all(math.isfinite(final[k]) for k in ("val_auroc", "test_auroc", "threshold"))
    run, config, protocol = result.run, result.config, get_protocol("cancer")
    base = evaluate(run.model, run.val, run.test, config, protocol, 0.0, run.train_set)
    flipped = EvalSet("test", run.test.images, run.test.index, 1 - run.test.labels, run.test.dx, run.test.image_id)
    other = evaluate(run.model, run.val, flipped, config, protocol, 0.0, run.train_set)
    assert other.metrics["threshold"] == base.metrics["threshold"] and other.state.center == base.state.center
    assert other.metrics["test_auroc"] == pytest.approx(1 - base.metrics["test_auroc"])
    assert base.metrics["test_auroc"] == pytest.approx(final["test_auroc"], abs=1e-9)
    if "+" in score:
        assert set(base.state.center) == set(score.split("+")) and all(s > 0 for s in base.state.scale.values())
    assert (base.state.latent_mean is not None) == ("latent" in score)


def test_a_latent_score_of_a_normal_training_image_is_small():
    from hamtune.train.evaluate import latent_gaussian

    codes = torch.randn(500, 4) * torch.tensor([1.0, 2.0, 0.5, 3.0]) + 5
    mean, precision = latent_gaussian(codes)
    d = codes - mean
    distance = ((d @ precision) * d).sum(1)
    assert abs(float(distance.mean()) - 4) < 0.5  # chi-square with 4 degrees of freedom
    far = torch.tensor([[5.0, 5.0, 5.0, 5.0 + 12]]) - mean
    assert float(((far @ precision) * far).sum()) > 10


def test_score_names_are_checked():
    for bad in ("mse+mse", "ssim+foo", "", "elbo"):
        with pytest.raises(HamtuneError, match="score"):
            TrainConfig(kind="ae", score=bad)
    assert TrainConfig(kind="vae", score="elbo+latent").score == "elbo+latent"
