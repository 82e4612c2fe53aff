"""Configurations over seeds: aggregation, the choice by mean validation objective, reproduce's seeds joined."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from hamtune.results.configurations import mean_sd, per_configuration, seed_rows
from hamtune.results.rank import Metric
from hamtune.sweep.confirm import choose, new_seeds

VAL = Metric("val_auroc", True)


def trials() -> pd.DataFrame:
    """a: one lucky search trial (0.90) whose seeds fall back; b: steady; c: searched once, not confirmed."""
    rows = [
        ("a", "a", 0, 0.90, 0.80),
        ("a1", "a", 1, 0.70, 0.70),
        ("a2", "a", 2, 0.71, 0.72),
        ("b", "b", 0, 0.85, 0.84),
        ("b1", "b", 1, 0.84, 0.83),
        ("b2", "b", 2, 0.86, 0.85),
        ("c", None, 0, 0.95, 0.60),
        ("d", "d", 0, 0.99, 0.99),
    ]
    frame = pd.DataFrame(rows, columns=["trial_id", "config_id", "seed", "val_auroc", "test_auroc"])
    return frame.assign(status=["completed"] * 7 + ["failed"], kind="ae", arch="cnn")


def test_the_chosen_configuration_is_the_best_mean_over_seeds_not_the_luckiest_trial():
    table = per_configuration(seed_rows(trials()), VAL, metrics=("test_auroc",))
    assert list(table["config_id"]) == ["b", "a", "c"] and list(table["n"]) == [3, 3, 1]  # d failed: not a seed
    b = table.iloc[0]
    values = np.array([0.85, 0.84, 0.86])
    assert b["val_auroc_mean"] == pytest.approx(values.mean()) and b["val_auroc_sd"] == pytest.approx(values.std(ddof=1))
    logits = np.log(values / (1 - values))  # AUROC lives in [0, 1]: the t-interval is taken on the logit scale
    half = 4.302652729911275 * logits.std(ddof=1) / math.sqrt(3)  # t(0.975, 2)
    expected = tuple(1 / (1 + np.exp(-(logits.mean() + sign * half))) for sign in (-1, 1))
    assert (b["val_auroc_ci_low"], b["val_auroc_ci_high"]) == pytest.approx(expected)
    assert b["seeds"] == "0,1,2" and table.iloc[2]["config_id"] == "c" and math.isnan(table.iloc[2]["val_auroc_sd"])
    assert mean_sd(b, "val_auroc") == "0.850 +- 0.010 [0.824, 0.873]"


def test_every_interval_of_a_mean_auroc_over_few_seeds_lies_inside_0_1_and_holds_the_mean():
    frame = pd.DataFrame(
        {
            "trial_id": ["p", "p1", "q", "q1", "q2"],
            "config_id": ["p", "p", "q", "q", "q"],
            "seed": [0, 1, 0, 1, 2],
            "val_auroc": [0.60, 0.99, 0.02, 0.5, 1.0],
            "test_auroc": [0.29, 0.97, 0.9, 0.95, 1.0],
            "test_mse": [0.1, 0.3, 0.2, 0.2, 0.4],
            "status": "completed",
            "kind": "ae",
        }
    )
    table = per_configuration(seed_rows(frame), VAL, metrics=("test_auroc", "test_mse"))
    for name in ("val_auroc", "test_auroc"):
        low, high, mean = table[f"{name}_ci_low"], table[f"{name}_ci_high"], table[f"{name}_mean"]
        assert ((low >= 0) & (high <= 1) & (low <= mean) & (mean <= high)).all(), table
    assert (table["test_mse_ci_low"] < 0).any()  # a plain t-interval where the metric is not bounded


def test_reproduce_seeds_join_their_configuration_but_the_rerun_of_the_original_does_not():
    reproduced = pd.DataFrame(
        {
            "config_id": ["c", "c", "c", "zz"],
            "seed": [0, 1, 2, 1],
            "is_original": [True, False, False, False],
            "status": ["completed"] * 4,
            "val_auroc": [0.95, 0.50, 0.52, 0.99],
            "test_auroc": [0.6, 0.5, 0.5, 0.9],
        }
    )
    table = per_configuration(seed_rows(trials(), reproduced), VAL, metrics=("test_auroc",)).set_index("config_id")
    assert table.loc["c", "n"] == 3 and table.loc["c", "val_auroc_mean"] == pytest.approx((0.95 + 0.50 + 0.52) / 3)
    assert "zz" not in table.index  # a reproduction of a trial these results do not hold


def test_the_confirm_stage_chooses_finite_values_best_first_and_seeds_past_the_original():
    assert choose({"x": 0.5, "y": math.nan, "z": 0.7, "w": 0.5}, 2, "max") == ["z", "x"]
    assert choose({"x": 0.5, "y": 0.1}, 3, "min") == ["y", "x"]
    assert new_seeds(7, 3) == [8, 9, 10]


def test_the_leaderboard_chooses_the_best_mean_configurations_seed_ensemble_not_the_luckiest_seed():
    from hamtune.results.rank import confirmed_first, leaderboard

    frame = trials().assign(test_set="t", data_fingerprint="f", protocol="cancer")
    board = leaderboard(frame, VAL)
    assert board["trial_id"].iloc[0] == "b2"  # no ensemble: the best-mean configuration's best seed, not c (0.95) or a (0.90)
    ensemble = pd.DataFrame(
        [
            {
                "trial_id": "seed-ensemble-3",
                "kind": "ensemble",
                "members": "b2,b,b1",
                "val_auroc": 0.851,
                "test_auroc": 0.86,
                "status": "completed",
                "arch": "cnn",
                "seed": 0,
            }
        ]
    )
    board = leaderboard(pd.concat([frame, ensemble.assign(test_set="t", data_fingerprint="f", protocol="cancer")], ignore_index=True), VAL)
    assert list(board["trial_id"][:3]) == ["seed-ensemble-3", "c", "a"] and list(board["rank"][:2]) == [1, 2]
    by_test = Metric("test_auroc", True)
    assert confirmed_first(board, by_test).equals(board)  # ranking on test chooses nothing: left as sorted


def test_an_ensemble_of_the_configurations_seeds_best_on_validation_is_its_delivered_row_too():
    from hamtune.results.rank import ensemble_of, leaderboard

    row = {"kind": "ensemble", "val_auroc": 0.84, "test_auroc": 0.86, "status": "completed", "arch": "cnn", "seed": 0}
    kept = pd.DataFrame([{**row, "trial_id": "seed-ensemble-2-of-3", "members": "b2,b1"}])
    mixed = pd.DataFrame([{**row, "trial_id": "ensemble-top2", "members": "b2,c"}])  # not one configuration's seeds
    frame = pd.concat([trials(), kept, mixed], ignore_index=True).assign(test_set="t", data_fingerprint="f", protocol="cancer")
    assert list(ensemble_of(frame, ["b", "b1", "b2"])["trial_id"]) == ["seed-ensemble-2-of-3"]
    assert leaderboard(frame, VAL)["trial_id"].iloc[0] == "seed-ensemble-2-of-3"
    everything = pd.DataFrame([{**row, "trial_id": "seed-ensemble-3", "members": "b,b1,b2"}])
    both = pd.concat([frame, everything], ignore_index=True)
    assert list(ensemble_of(both, ["b", "b1", "b2"])["trial_id"]) == ["seed-ensemble-3", "seed-ensemble-2-of-3"]  # all first
