"""Models, the training loop and evaluation: real training on small real-format data."""

from __future__ import annotations

import math
import pickle

import numpy as np
import pytest
import torch

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.models import build_model
from hamtune.results.store import load_results
from hamtune.train import metrics
from hamtune.train.checkpoint import load_weights
from hamtune.train.config import PRESETS, TrainConfig, build_config
from hamtune.train.loop import epoch_order, train

TIMING = ("epoch_time_s", "train_images_per_s")


def small(**changes) -> TrainConfig:
    base = dict(image_size=28, epochs=3, latent_dim=16, cnn_channels=8, mlp_width=128, batch_size=32, lr=2e-3)
    return TrainConfig(**{**base, **changes})


def without_timing(row: dict) -> dict:
    return {k: v for k, v in row.items() if k not in TIMING}


@pytest.mark.parametrize("kind", ["ae", "vae"])
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_each_model_type_learns_and_evaluates_to_finite_metrics(prepared, kind, arch):
    result = train(small(kind=kind, arch=arch, epochs=4), prepared)
    assert result.status == "completed" and len(result.history) == 4
    losses = [h["train_loss"] for h in result.history]
    assert losses[-1] < losses[0]
    final = result.final
    for key in ("val_auroc", "test_auroc", "test_auprc", "test_f1", "test_mse", "test_psnr", "test_ssim", "threshold"):
        assert math.isfinite(final[key]), key
    assert ("test_elbo" in final) == (kind == "vae")
    assert set(result.scores.columns) >= {"image_id", "dx", "label", "score"}
    assert len(result.scores) == len(result.run.test.index)
    assert result.samples["original"].shape == result.samples["reconstruction"].shape == (8, 28, 28, 3)
    assert ("prior" in result.samples) == (kind == "vae")


@pytest.mark.parametrize("size", [28, 32, 64, 128])
def test_cnn_reconstructs_every_supported_size(size):
    for kind in ("ae", "vae"):
        model = build_model(TrainConfig(kind=kind, arch="cnn", image_size=size, cnn_blocks=4).model_spec(), (3, size, size))
        assert model(torch.rand(2, 3, size, size))[0].shape == (2, 3, size, size)


def test_ssim_matches_scikit_image():
    from skimage.metrics import structural_similarity

    rng = np.random.default_rng(0)
    for size, channels in ((28, 3), (64, 3), (32, 1)):
        a = rng.random((size, size, channels))
        b = np.clip(a + rng.normal(0, 0.1, a.shape) + 0.05 * np.sin(np.arange(size))[:, None, None], 0, 1)
        reference = structural_similarity(
            a, b, data_range=1.0, channel_axis=-1, gaussian_weights=True, sigma=1.5, use_sample_covariance=False
        )
        ours = metrics.ssim(torch.tensor(a).permute(2, 0, 1)[None], torch.tensor(b).permute(2, 0, 1)[None])
        assert abs(float(ours) - reference) < 1e-3


def test_threshold_comes_from_validation_only(prepared):
    from hamtune.data.splits import get_protocol
    from hamtune.train.evaluate import EvalSet, evaluate

    result = train(small(epochs=1), prepared)
    run = result.run
    config = result.config
    base = evaluate(run.model, run.val, run.test, config, get_protocol("cancer"), 0.0).metrics
    flipped = EvalSet("test", run.test.images, run.test.index, 1 - run.test.labels, run.test.dx, run.test.image_id)
    changed_test = evaluate(run.model, run.val, flipped, config, get_protocol("cancer"), 0.0).metrics
    assert changed_test["threshold"] == base["threshold"]
    assert changed_test["test_auroc"] == pytest.approx(1 - base["test_auroc"])
    shuffled = EvalSet("val", run.val.images, run.val.index, np.roll(run.val.labels, 7), run.val.dx, run.val.image_id)
    changed_val = evaluate(run.model, shuffled, run.test, config, get_protocol("cancer"), 0.0).metrics
    assert changed_val["threshold"] != base["threshold"]


def test_threshold_maximises_validation_f1():
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 1])
    scores = np.array([0.1, 0.2, 0.3, 0.35, 0.4, 0.5, 0.55, 0.9])
    threshold = metrics.choose_threshold(labels, scores)
    assert 0.35 < threshold < 0.4
    assert metrics.detection_at(labels, scores, threshold) == {"precision": 0.75, "recall": 1.0, "f1": pytest.approx(6 / 7)}


def test_auroc_auprc_and_the_pr_curve_are_scikit_learns_to_the_bit():
    """hamtune computes them without importing scikit-learn (a second per trial); the values must not move."""
    from sklearn.metrics import average_precision_score, precision_recall_curve, roc_auc_score

    rng = np.random.default_rng(0)
    for case in range(400):
        n = int(rng.integers(2, 300))
        labels = (rng.random(n) < rng.uniform(0.05, 0.6)).astype(int)
        labels[:2] = [0, 1]
        raw = rng.random(n)
        scores = [raw, np.round(raw, 1), rng.integers(0, 4, n).astype(float), raw.astype(np.float32)][case % 4]
        assert metrics.auroc(labels, scores) == roc_auc_score(labels, scores), case
        assert metrics.auprc(labels.astype(bool), scores) == average_precision_score(labels, scores), case
        for ours, theirs in zip(metrics._pr_curve(labels, scores), precision_recall_curve(labels, scores)):
            assert np.array_equal(ours, theirs), case
    assert math.isnan(metrics.auroc(np.zeros(5), np.arange(5.0)))
    with pytest.raises(ValueError, match="NaN or infinity"):
        metrics.auroc(np.array([0, 1]), np.array([0.5, np.nan]))


def test_weighted_rebalancing_samples_normal_classes_evenly(prepared):
    from hamtune.data.splits import rebalance_weights

    dx = prepared.meta["dx"].to_numpy(str)
    normal = dx[np.isin(dx, ["nv", "bkl", "vasc", "df"])]
    weights = torch.as_tensor(rebalance_weights(normal))
    drawn = np.concatenate([normal[epoch_order(small(), len(normal), weights, e).numpy()] for e in range(30)])
    shares = {c: np.mean(drawn == c) for c in ("nv", "bkl", "vasc", "df")}
    assert all(abs(s - 0.25) < 0.03 for s in shares.values()), shares
    assert np.mean(normal == "nv") > 0.75


def test_same_config_and_seed_give_identical_metrics(prepared):
    a = train(small(kind="vae", arch="cnn", dropout=0.1), prepared)
    b = train(small(kind="vae", arch="cnn", dropout=0.1), prepared)
    assert [without_timing(h) for h in a.history] == [without_timing(h) for h in b.history]
    c = train(small(kind="vae", arch="cnn", dropout=0.1, seed=1), prepared)
    assert without_timing(c.final) != without_timing(a.final)


def test_resuming_from_a_checkpoint_gives_the_uninterrupted_result(prepared, tmp_path):
    config = small(epochs=4, rebalance="weighted", lr_schedule="cosine")
    whole = train(config, prepared)

    def stop_after_two(metrics, run):
        if run.epoch == 2:
            run.save(tmp_path / "ckpt")
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(config, prepared, on_epoch=stop_after_two)
    resumed = train(config, prepared, resume_from=tmp_path / "ckpt")
    assert [without_timing(h) for h in resumed.history] == [without_timing(h) for h in whole.history]


def test_divergence_ends_the_run_with_its_last_good_metrics(prepared):
    result = train(small(kind="vae", arch="mlp", lr=1e5), prepared)
    assert result.status == "diverged" and "epoch 1" in result.reason and result.history == []

    def blow_up_after_two(metrics, run):
        if run.epoch == 2:
            run.optimizer.param_groups[0]["lr"] = 1e6

    result = train(small(kind="ae", arch="cnn", epochs=5), prepared, on_epoch=blow_up_after_two)
    assert result.status == "diverged" and "epoch 3" in result.reason
    assert [h["epoch"] for h in result.history] == [1, 2]
    assert all(math.isfinite(h["val_auroc"]) for h in result.history)


def test_out_of_memory_is_a_failed_run_not_a_crash(prepared):
    result = train(small(arch="mlp", mlp_width=1 << 20, latent_dim=4096, epochs=1, image_size=28), prepared)
    assert result.status == "failed" and "out of memory" in result.reason


def test_checkpoint_with_a_pickle_payload_is_refused(tmp_path):
    class Payload:
        def __reduce__(self):
            return (print, ("pwned",))

    path = tmp_path / "model.pt"
    with open(path, "wb") as handle:
        pickle.dump({"weights": Payload()}, handle)
    with pytest.raises(HamtuneError, match="refused to load"):
        load_weights(path)
    torch.save({"w": torch.ones(2)}, tmp_path / "ok.pt")
    assert torch.equal(load_weights(tmp_path / "ok.pt")["w"], torch.ones(2))


def test_presets_reproduce_the_original_projects():
    vae = build_config({"preset": "seed-vae"})
    assert (vae.kind, vae.arch, vae.latent_dim, vae.batch_size, vae.lr, vae.epochs, vae.max_train_images) == (
        "vae",
        "mlp",
        120,
        32,
        1e-3,
        100,
        5000,
    )
    ae = build_config({"preset": "seed-ae", "batch_size": 64})
    assert ae.batch_size == 64 and ae.latent_dim == PRESETS["seed-ae"]["latent_dim"]
    assert (ae.kind, ae.arch, ae.recon_loss, ae.protocol) == ("ae", "mlp", "mse", "cancer")
    assert set(PRESETS) >= {"seed-ae", "seed-vae", "medianomaly-ae", "medianomaly-vae"}


def test_set_errors_list_valid_keys_and_values(capsys):
    assert main(["train", "--set", "latnet_dim=3"]) == 2
    err = capsys.readouterr().err
    assert "unknown key(s) latnet_dim" in err and "latent_dim" in err
    assert main(["train", "--set", "kind=gan"]) == 2
    assert "kind must be one of ae, vae" in capsys.readouterr().err
    assert main(["train", "--set", "lr"]) == 2
    assert "expected key=value" in capsys.readouterr().err


def test_cli_train_writes_the_sweep_layout(prepared, tmp_path, capsys):
    code = main(
        [
            "train",
            "--preset",
            "seed-ae",
            "--data",
            str(prepared.path),
            "--set",
            "epochs=2",
            "--results",
            str(tmp_path),
            "--name",
            "cli",
        ]
    )
    out = capsys.readouterr().out
    assert code == 0 and "test_auroc" in out
    trials, epochs, scores = load_results(tmp_path / "cli")
    assert len(trials) == 1 and trials["status"][0] == "completed" and trials["preset"][0] == "seed-ae"
    assert trials["cnn_channels"].isna().all() and trials["beta"].isna().all()
    assert len(epochs) == 2 and len(scores) > 0
    assert (tmp_path / "cli" / "checkpoints" / trials["trial_id"][0] / "model.pt").exists()


def test_every_config_field_sits_in_one_group_and_every_choice_is_its_literal():
    import dataclasses
    import typing

    from hamtune.config_fields import GROUPS, MACHINE, SPLIT_KEYS
    from hamtune.train.config import CHOICES

    assert [f.name for f in dataclasses.fields(TrainConfig)] == [name for group in GROUPS.values() for name in group]
    assert set(MACHINE) <= set(GROUPS["runtime"]) and SPLIT_KEYS == GROUPS["data"]
    hints = typing.get_type_hints(TrainConfig)
    assert CHOICES["channels"] == (1, 3) and typing.get_args(hints["kind"]) == ("ae", "vae") == CHOICES["kind"]
    assert TrainConfig.from_dict({"channels": "1"}).channels == 1  # a Literal of ints takes "1" as --set writes it
    with pytest.raises(HamtuneError, match="kind must be one of ae, vae, got 'gan'"):
        TrainConfig.from_dict({"kind": "gan"})
