"""Fused seeds (hamtune.train.fused): K seeds trained as one grouped model give each seed what it gets alone."""

from __future__ import annotations

import copy
import logging

import numpy as np
import pytest
import torch

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.models import build_model
from hamtune.results.store import load_results
from hamtune.train.checkpoint import load_weights
from hamtune.train.config import TrainConfig
from hamtune.train.fused import group_step, read_group, regroup, save_group, train_group, unfusable
from hamtune.train.loop import Run, make_optimizer, train
from hamtune.train.losses import per_image_terms, training_loss

SHAPE = (3, 16, 16)
COMPARED = ("train_loss", "val_loss", "val_mse", "val_ssim", "test_mse")
RANKED = ("val_auroc", "test_auroc")  # float32 drift may swap a near-tied pair of images: a few pairs' worth


def small(**changes) -> TrainConfig:
    base = dict(image_size=28, epochs=2, latent_dim=16, cnn_channels=8, batch_size=32, lr=2e-3)
    return TrainConfig(**{**base, **changes})


def members(config: TrainConfig, seeds: list[int]) -> list[Run]:
    """Runs holding just what a group trains: each seed's model, as `loop._build` initialises it, and its AdamW."""
    runs = []
    for seed in seeds:
        torch.manual_seed(seed)
        model = build_model(config.model_spec(), SHAPE).to(memory_format=torch.channels_last)
        runs.append(
            Run(config.replace(seed=seed), model, make_optimizer(model, config, torch.device("cpu")), None, torch.device("cpu"), None, None)
        )
    return runs


def lone_step(run: Run, x: torch.Tensor) -> None:
    recon, mu, logvar = run.model(x)
    loss = training_loss(per_image_terms(recon, x, mu, logvar, "mse"), False, "mse", 0.0, x[0].numel())
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()


def step_all(group, xs: list[torch.Tensor]) -> None:
    group_step(group, torch.cat(xs, 1).contiguous(memory_format=torch.channels_last))


def tensors(run: Run) -> dict[str, torch.Tensor]:
    """A member's weights, buffers and AdamW moments, copied."""
    out = {k: v.detach().clone() for k, v in run.model.state_dict().items()}
    for i, state in enumerate(run.optimizer.state.values()):
        out.update({f"adamw.{i}.{k}": v.clone() for k, v in state.items()})
    return out


@pytest.mark.parametrize("norm", ["batch", "group", "none"])
def test_a_grouped_step_is_each_models_own_step_in_float64(norm):
    torch.set_default_dtype(torch.float64)
    try:
        config = TrainConfig(image_size=16, latent_dim=8, cnn_channels=4, cnn_blocks=3, norm=norm, lr=1e-2)
        fused = members(config, [0, 1, 2])
        alone = copy.deepcopy(fused)
        group = regroup(fused, SHAPE, torch.device("cpu"))
        generator = torch.Generator().manual_seed(0)
        for _ in range(3):
            xs = [torch.rand(8, *SHAPE, generator=generator).contiguous(memory_format=torch.channels_last) for _ in fused]
            step_all(group, xs)
            for run, x in zip(alone, xs):
                lone_step(run, x)
        group.share_state()
        for a, b in zip(fused, alone):
            got, want = tensors(a), tensors(b)
            assert got.keys() == want.keys() and any(k.startswith("adamw") for k in got)
            for key in want:
                assert torch.allclose(got[key].double(), want[key].double(), rtol=1e-9, atol=1e-12), key
    finally:
        torch.set_default_dtype(torch.float32)


def test_a_member_that_leaves_the_group_stops_updating():
    config = TrainConfig(image_size=16, latent_dim=8, cnn_channels=4, cnn_blocks=3)
    runs = members(config, [0, 1])
    group = regroup(runs, SHAPE, torch.device("cpu"))
    xs = [torch.rand(8, *SHAPE) for _ in runs]
    step_all(group, xs)
    group.share_state()
    before = [tensors(run) for run in runs]
    group = regroup(runs[:1], SHAPE, torch.device("cpu"))  # runs[1] stops (patience) and leaves
    step_all(group, xs[:1])
    group.share_state()
    after = [tensors(run) for run in runs]
    assert all(torch.equal(after[1][k], before[1][k]) for k in before[1])
    assert not all(torch.equal(after[0][k], before[0][k]) for k in before[0])
    assert after[0]["adamw.0.step"] == 2 and after[1]["adamw.0.step"] == 1


def test_fused_seeds_give_each_seed_the_metrics_it_gets_alone(prepared, tmp_path):
    configs = [small(seed=seed, epochs=3, patience=1, lr_schedule="cosine") for seed in (0, 1, 2)]
    fused = train_group(configs, prepared)
    for config, got in zip(configs, fused):
        want = train(config, prepared)
        assert got.status == want.status and got.reason == want.reason
        assert len(got.history) == len(want.history)
        for g, w in zip(got.history, want.history):
            assert g.keys() == w.keys() and g["lr"] == w["lr"] and g["epoch"] == w["epoch"]
            compared = [k for k in COMPARED if k in w]
            np.testing.assert_allclose([g[k] for k in compared], [w[k] for k in compared], rtol=2e-3, atol=2e-4)
            ranked = [k for k in RANKED if k in w]
            np.testing.assert_allclose([g[k] for k in ranked], [w[k] for k in ranked], atol=0.01)
        assert got.scores["image_id"].tolist() == want.scores["image_id"].tolist()
        np.testing.assert_allclose(got.scores["score"], want.scores["score"], rtol=2e-3, atol=2e-4)
        got.run.save(tmp_path / f"got{config.seed}")
        want.run.save(tmp_path / f"want{config.seed}")
        a, b = (load_weights(tmp_path / f"{name}{config.seed}" / "trainer.pt", "cpu") for name in ("got", "want"))
        assert a["epoch"] == b["epoch"] and torch.equal(a["rng"], b["rng"])
        assert a["optimizer"]["state"][0]["step"] == b["optimizer"]["state"][0]["step"]  # no step after it stopped


def test_only_configs_that_differ_in_their_seed_alone_fuse():
    assert unfusable([small(seed=0), small(seed=1)]) == ""
    assert "seed" in unfusable([small(seed=0), small(seed=1, lr=1e-2)])
    assert "arch=mlp" in unfusable([small(arch="mlp", seed=s) for s in (0, 1)])
    assert "vae" in unfusable([small(kind="vae", seed=s) for s in (0, 1)])
    with pytest.raises(ValueError, match="dropout"):
        train_group([small(dropout=0.1, seed=s) for s in (0, 1)], None)


@pytest.mark.parametrize("arch", ["cnn", "mlp"])
def test_cli_train_seeds_writes_one_row_per_seed_and_their_ensemble(prepared, tmp_path, capsys, caplog, arch):
    with caplog.at_level(logging.DEBUG):  # -v after the subcommand is taken as before it
        code = main(
            [
                "train",
                "-v",
                "--data",
                str(prepared.path),
                "--set",
                "epochs=1",
                "--set",
                "image_size=28",
                "--fuse",
                "on",
                "--set",
                f"arch={arch}",
                "--set",
                "seed=5",
                "--seeds",
                "2",
                "--results",
                str(tmp_path),
                "--name",
                "s",
            ]
        )
    assert code == 0 and capsys.readouterr().out.count("test_auroc") == 3  # two seeds and their ensemble
    assert ("one after another, not fused: arch=mlp" in caplog.text) == (arch == "mlp")
    trials, epochs, scores = load_results(tmp_path / "s")
    seeds = trials[trials["kind"] != "ensemble"]
    assert sorted(seeds["seed"]) == [5, 6] and (trials["status"] == "completed").all() and len(trials) == 3
    assert len(epochs) == 2 and scores["trial_id"].nunique() == 3
    for trial in seeds["trial_id"]:
        assert (tmp_path / "s" / "checkpoints" / trial / "model.pt").exists()


def test_on_cpu_auto_trains_seeds_one_after_another_as_measured_faster(prepared, tmp_path, caplog):
    from hamtune.train.config import build_config
    from hamtune.train.single import run_seeds_and_record

    config = build_config({"arch": "cnn", "epochs": 1, "image_size": 28, "cnn_channels": 8})
    with caplog.at_level(logging.DEBUG):
        runs = run_seeds_and_record(config, 2, prepared, tmp_path / "r", "r", progress=False)
    assert len(runs) == 2 and "on CPU one seed after another measured faster" in caplog.text


class Crash(Exception):
    pass


def test_a_group_resumed_from_its_checkpoint_ends_as_an_uninterrupted_one(prepared, tmp_path):
    configs = [small(seed=seed, epochs=3, patience=1) for seed in (0, 1, 2)]
    whole = train_group(configs, prepared)

    def crash_after_first_epoch(states):
        save_group(states, tmp_path)
        raise Crash

    with pytest.raises(Crash):
        train_group(configs, prepared, on_group_epoch=crash_after_first_epoch)
    assert [m["status"] for m in read_group(tmp_path)] == ["running"] * 3
    epochs_seen = []
    resumed = train_group(
        configs, prepared, resume_from=tmp_path, on_group_epoch=lambda states: epochs_seen.append([m.run.epoch for m in states])
    )
    assert epochs_seen[0] == [2, 2, 2]  # went on from epoch 1, not from the start
    for got, want in zip(resumed, whole):
        assert (got.status, got.reason) == (want.status, want.reason)
        assert [h["epoch"] for h in got.history] == [h["epoch"] for h in want.history]
        np.testing.assert_allclose([h["val_loss"] for h in got.history], [h["val_loss"] for h in want.history], rtol=1e-6)
        np.testing.assert_allclose(got.scores["score"], want.scores["score"], rtol=1e-6)


def test_a_group_checkpoint_is_refused_for_other_seeds_or_a_forged_state(prepared, tmp_path):
    configs = [small(seed=seed, epochs=1) for seed in (0, 1)]
    train_group(configs, prepared, on_group_epoch=lambda states: save_group(states, tmp_path))
    assert [m["status"] for m in read_group(tmp_path)] == ["completed", "completed"]
    with pytest.raises(HamtuneError, match=r"holds seeds \[0, 1\], not this group's \[4, 5\]"):
        train_group([c.replace(seed=c.seed + 4) for c in configs], prepared, resume_from=tmp_path)
    (tmp_path / "group.json").write_text('{"members": [{"seed": 0, "status": "exec", "reason": ""}]}')
    with pytest.raises(HamtuneError, match="group.json: 'members' must be"):
        read_group(tmp_path)
