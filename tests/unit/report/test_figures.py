"""The report's figures draw what their numbers say: the ROC legend is the AUROC of the scores, the expected-best
curve is results.intervals.expected_max, the Pareto front holds exactly the undominated trials, and a figure
without the data it needs is left out (None), not drawn empty."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hamtune.report import figures
from hamtune.results.intervals import expected_max
from hamtune.results.rank import Metric


def board() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sweep": "s",
            "trial_id": ["a", "b", "c", "d"],
            "kind": "ae",
            "arch": ["cnn", "cnn", "mlp", "mlp"],
            "rebalance": "none",
            "role": "",
            "rank": [1, 2, 3, 4],
            "lr": 1e-3,
            "latent_dim": 8,
            "val_auroc": [0.8, 0.7, 0.75, 0.6],
            "test_auroc": [0.82, 0.71, 0.79, 0.55],
            "test_f1": [0.5, 0.4, 0.6, 0.3],
            "test_ssim": [0.6, 0.9, 0.7, 0.5],
        }
    )


def test_roc_legend_is_the_auroc_of_the_per_image_scores():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    values = labels + rng.normal(0, 1, 200)
    scores = pd.DataFrame({"sweep": "s", "trial_id": "a", "label": labels, "score": values})
    fig = figures.roc_pr(board().head(1), scores, "t")
    roc = fig.data[0]
    assert f"AUROC {roc_auc_score(labels, values):.3f}" in roc.name
    assert (roc.x[0], roc.y[0], roc.x[-1], roc.y[-1]) == (0, 0, 1, 1)
    assert fig.data[-1].y[0] == pytest.approx(labels.mean())  # the precision-recall chance line is the prevalence
    assert figures.roc_pr(board().head(1), scores.assign(label=0), "t") is None  # one class: no curve to draw


def test_expected_best_is_the_closed_form_with_its_band():
    fig = figures.expected_best(board(), Metric("val_auroc", True), "t")
    band, curve = fig.data
    n, mean, sd = expected_max(np.array([0.8, 0.7, 0.75, 0.6]))
    np.testing.assert_allclose(curve.x, n)
    np.testing.assert_allclose(curve.y, mean)
    np.testing.assert_allclose(band.y[: len(n)], mean + sd)
    assert figures.expected_best(board().head(1), Metric("val_auroc", True), "t") is None


def test_the_pareto_front_holds_exactly_the_undominated_trials():
    fig = figures.quality_vs_detection(board(), "t")
    fronts = [trace for trace in fig.data if trace.name == "Pareto front"]
    assert len(fronts) == 2  # one per detection metric (AUROC, F1)
    auroc = fronts[0]
    assert sorted(zip(auroc.x, auroc.y)) == [(0.6, 0.82), (0.7, 0.79), (0.9, 0.71)]  # d (0.5, 0.55) loses to every other
    assert figures.quality_vs_detection(board().drop(columns=["test_ssim"]), "t") is None
