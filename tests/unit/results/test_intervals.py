"""Bootstrap intervals and the expected-max curve against brute-force references on small cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import average_precision_score, roc_auc_score

from hamtune.results.intervals import bootstrap, compare, decimals, expected_max, paired_difference, resample_indices, shown, with_intervals


def _case(n: int = 120, seed: int = 3) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.25).astype(int)
    a = np.round(rng.normal(size=n) + labels, 1)  # rounded: ties between and within classes
    b = np.round(rng.normal(size=n) + 0.5 * labels, 1)
    return labels, a, b


def _loop_percentiles(values: list[float]) -> tuple[float, float]:
    low, high = np.percentile(values, [2.5, 97.5])
    return float(low), float(high)


def test_resamples_are_stratified_by_label_and_fixed_by_the_seed():
    labels = _case()[0]
    drawn = resample_indices(labels, 50)
    assert (labels[drawn].sum(1) == labels.sum()).all() and drawn.shape == (50, len(labels))
    assert (resample_indices(labels, 50) == drawn).all()


def test_intervals_equal_a_loop_over_resamples_with_scikit_learn():
    labels, scores, _ = _case()
    found = bootstrap(labels, scores, resamples=300)
    drawn = resample_indices(labels, 300)
    auroc = [roc_auc_score(labels[i], scores[i]) for i in drawn]
    auprc = [average_precision_score(labels[i], scores[i]) for i in drawn]
    assert np.isclose(found["auroc"].value, roc_auc_score(labels, scores))
    assert np.isclose(found["auprc"].value, average_precision_score(labels, scores))
    assert np.allclose((found["auroc"].low, found["auroc"].high), _loop_percentiles(auroc))
    assert np.allclose((found["auprc"].low, found["auprc"].high), _loop_percentiles(auprc))


def test_the_paired_difference_equals_a_loop_over_shared_resamples():
    labels, a, b = _case()
    found = paired_difference(labels, a, b, resamples=300)
    drawn = resample_indices(labels, 300)
    differences = [roc_auc_score(labels[i], a[i]) - roc_auc_score(labels[i], b[i]) for i in drawn]
    assert np.isclose(found.value, roc_auc_score(labels, a) - roc_auc_score(labels, b))
    assert np.allclose((found.low, found.high), _loop_percentiles(differences))


def test_compare_pairs_two_trials_by_image_and_a_model_never_beats_itself():
    labels, a, b = _case()
    ids = [f"img{i}" for i in range(len(labels))]
    scores = pd.concat(
        [
            pd.DataFrame({"sweep": "s", "trial_id": "a", "image_id": ids, "label": labels, "score": a}),
            pd.DataFrame({"sweep": "s", "trial_id": "b", "image_id": ids[::-1], "label": labels[::-1], "score": b[::-1]}),
        ]
    )
    row_a, row_b = pd.Series({"sweep": "s", "trial_id": "a"}), pd.Series({"sweep": "s", "trial_id": "b"})
    assert np.isclose(compare(row_a, row_b, scores).value, paired_difference(labels, a, b).value)
    itself = compare(row_a, row_a, scores)
    assert itself.value == itself.low == itself.high == 0 and not itself.excludes_zero
    board = with_intervals(pd.DataFrame({"sweep": ["s", "s", "s"], "trial_id": ["a", "b", "gone"]}), scores)
    assert board["test_auroc_low"].iloc[0] < roc_auc_score(labels, a) < board["test_auroc_high"].iloc[0]
    assert board.loc[2, ["test_auroc_low", "test_auprc_high"]].isna().all()


def test_figures_are_rounded_to_what_the_interval_supports():
    assert decimals(0.618, 0.759) == 3 and decimals(0.83, 0.85) == 3 and decimals(0.2, 0.8) == 2
    assert shown(0.68812, 0.618, 0.759) == "0.688 [0.618, 0.759]"
    assert shown(0.5, 0.1, 0.9) == "0.50 [0.10, 0.90]"


def test_expected_max_equals_its_closed_form_on_a_toy_input():
    values = np.array([0.7, 0.5, 0.6])
    n, mean, sd = expected_max(values, 4)
    v = np.sort(values)
    for k in n:  # P(max of k draws = v_i) = (i/3)^k - ((i-1)/3)^k
        p = np.array([(i / 3) ** k - ((i - 1) / 3) ** k for i in (1, 2, 3)])
        assert np.isclose(mean[k - 1], p @ v) and np.isclose(sd[k - 1], np.sqrt(p @ v**2 - (p @ v) ** 2))
    assert np.isclose(mean[0], values.mean()) and np.isclose(mean[1], (0.5 + 3 * 0.6 + 5 * 0.7) / 9)
    assert (np.diff(mean) > 0).all() and mean[-1] < values.max()
