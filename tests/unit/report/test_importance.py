"""Parameter importance is computed on the distributions the space declared, not on ones guessed from values."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

from hamtune.errors import HamtuneError
from hamtune.report.importance import build_study, param_importance
from hamtune.results.layout import DISTRIBUTIONS
from hamtune.results.rank import Metric
from hamtune.results.store import read_distributions, write_distributions
from hamtune.sweep.space import parse_space

SPACE = {
    "name": "declared",
    "data": "synthetic",
    "num_samples": 30,
    "max_epochs": 2,
    "params": {
        "latent_dim": {"int": [8, 256], "log": True},
        "batch_size": {"choice": [32, 64, 128, 256, 512]},
        "lr": {"float": [1e-4, 1e-2], "log": True},
        "kind": {"choice": ["ae", "vae"]},
    },
}


def trials(n: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    batch = rng.choice([32, 64, 128, 256, 512], n)
    latent = np.exp(rng.uniform(np.log(8), np.log(256), n)).round().astype(int)
    auroc = 0.6 + 0.2 * (batch == 64) + 0.01 * np.log(latent) + rng.normal(0, 0.01, n)
    return pd.DataFrame(
        {
            "sweep": "declared",
            "trial_id": [f"t{i}" for i in range(n)],
            "latent_dim": latent,
            "batch_size": batch,
            "lr": np.exp(rng.uniform(np.log(1e-4), np.log(1e-2), n)),
            "kind": rng.choice(["ae", "vae"], n),
            "val_auroc": auroc,
        }
    )


def test_the_space_declares_a_log_int_and_a_categorical_and_the_sweep_folder_keeps_them(tmp_path):
    space = parse_space(SPACE, Path("declared.yaml"))
    write_distributions(tmp_path, space.distributions())
    from optuna.distributions import json_to_distribution

    read = {k: json_to_distribution(v) for k, v in read_distributions(tmp_path).items()}
    assert read["latent_dim"] == IntDistribution(8, 256, log=True)
    assert read["batch_size"] == CategoricalDistribution([32, 64, 128, 256, 512])
    assert read["lr"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert read_distributions(tmp_path / "missing") == {}


def test_importance_uses_the_declared_distributions_not_guessed_ones(tmp_path):
    space = parse_space(SPACE, Path("declared.yaml"))
    declared = {"declared": space.distributions()}
    ranked, metric = trials(), Metric("val_auroc", True)
    study, _ = build_study(ranked, metric, declared)
    distributions = study.trials[0].distributions
    assert distributions["latent_dim"] == IntDistribution(8, 256, log=True)
    assert distributions["batch_size"] == CategoricalDistribution([32, 64, 128, 256, 512])
    assert distributions["kind"] == CategoricalDistribution(["ae", "vae"])
    guessed, _ = build_study(ranked, metric)  # what a folder without distributions.json gets
    assert isinstance(guessed.trials[0].distributions["batch_size"], IntDistribution)
    importance = param_importance(ranked, metric, declared)
    assert set(importance.values) == {"latent_dim", "batch_size", "lr", "kind"}
    assert importance.top == "batch_size"  # only 64 is better: a categorical effect


def test_a_declared_distribution_that_does_not_hold_the_values_is_not_used():
    ranked = trials()
    declared = {
        "declared": {
            "latent_dim": parse_space({**SPACE, "params": {"latent_dim": {"int": [8, 16]}}}, Path("x.yaml")).distributions()["latent_dim"]
        }
    }
    study, _ = build_study(ranked, Metric("val_auroc", True), declared)
    assert study.trials[0].distributions["latent_dim"].high == ranked["latent_dim"].max()


def test_a_damaged_distributions_file_is_an_error_naming_it(tmp_path):
    (tmp_path / DISTRIBUTIONS).write_text("{not json")
    with pytest.raises(HamtuneError, match=r"distributions.json: unreadable .*delete it"):
        read_distributions(tmp_path)
