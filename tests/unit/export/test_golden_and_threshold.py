"""Golden vectors and the threshold check on plain arrays: what is picked, stored, read back and compared."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hamtune.data.images import Preprocess
from hamtune.errors import HamtuneError
from hamtune.export.golden import GOLDEN, first_mismatch, pick, read_golden, synthetic, within, write_golden
from hamtune.export.threshold_check import check_threshold


def test_pick_spreads_over_the_scores_lowest_to_highest():
    scores = np.array([5.0, 1.0, 9.0, 3.0, 7.0, 2.0, 8.0])
    chosen = pick(scores)
    assert list(scores[chosen]) == [1.0, 3.0, 7.0, 9.0]
    assert list(pick(np.array([2.0, 1.0]))) == [1, 0]  # fewer images than vectors: each once


def test_synthetic_vectors_are_fixed_image_like_uint8_of_the_models_shape():
    first, again = synthetic(Preprocess(28, "center", 3)), synthetic(Preprocess(28, "center", 3))
    assert first.dtype == np.uint8 and first.shape == (4, 28, 28, 3)
    np.testing.assert_array_equal(first, again)
    assert len({image.tobytes() for image in first}) == 4 and first.std() > 10
    assert synthetic(Preprocess(32, "center", 1)).shape == (4, 32, 32, 1)


def test_golden_vectors_round_trip_and_name_the_first_vector_that_differs(tmp_path):
    images = synthetic(Preprocess(16, "center", 3))
    info = write_golden(tmp_path, lambda x: x.reshape(len(x), -1).mean(1) / 100, images, ["a", "b", "c", "d"], 1.0, "test")
    golden = read_golden(tmp_path / GOLDEN)
    assert info["count"] == 4 and golden.names.tolist() == ["a", "b", "c", "d"] and golden.threshold == 1.0
    np.testing.assert_array_equal(golden.images, images)
    assert (golden.flagged == (golden.scores > 1.0)).all()
    assert first_mismatch(golden, golden.scores * (1 + 5e-6), 1.0) is None
    off = golden.scores.copy()
    off[2] += 1e-3
    assert first_mismatch(golden, off, 1.0).startswith("vector 3 (c) scores")
    assert golden.flagged.any()
    moved = first_mismatch(golden, golden.scores, float(golden.scores.max()) + 1)  # the same scores, another threshold
    first = int(np.argmax(golden.flagged))
    assert moved.startswith(f"vector {first + 1} ({golden.names[first]}) is not flagged") and "golden flagged" in moved
    assert first_mismatch(golden, np.full(4, np.nan), 1.0).startswith("vector 1 (a)")


def test_unreadable_or_misshaped_golden_vectors_are_one_error_naming_the_file(tmp_path):
    with pytest.raises(HamtuneError, match="golden.npz: missing"):
        read_golden(tmp_path / GOLDEN)
    (tmp_path / GOLDEN).write_bytes(b"not a zip")
    with pytest.raises(HamtuneError, match="not readable golden vectors"):
        read_golden(tmp_path / GOLDEN)
    np.savez(
        tmp_path / GOLDEN,
        images=np.zeros((2, 4, 4, 3), np.float32),
        names=np.array(["a", "b"]),
        scores=np.zeros(2),
        flagged=np.zeros(2, bool),
        threshold=np.float64(0),
    )
    with pytest.raises(HamtuneError, match="must be uint8 images"):
        read_golden(tmp_path / GOLDEN)


def test_within_is_relative_above_one_and_absolute_below():
    assert within(100.0005, 100.0) and not within(100.002, 100.0)
    assert within(1e-6, -1e-6) and not within(2e-5, 0.0)


def test_a_threshold_that_flags_every_validation_image_is_named():
    labels = np.array([0] * 8 + [1] * 2)
    scores = np.linspace(0.0, 1.0, 10)
    below = check_threshold(labels, scores, -0.1)
    assert below["flagged_share"] == 1.0 and below["recall"] == 1.0 and below["precision"] == pytest.approx(0.2)
    assert "at or below the lowest validation score" in below["warning"] and "prevalence 0.2" in below["warning"]
    many = np.r_[np.linspace(0.5, 1.0, 40), [0.0], np.linspace(0.6, 1.0, 2)]
    almost = check_threshold(np.r_[np.zeros(41, int), np.ones(2, int)], many, 0.1)
    assert almost["flagged_share"] > 0.95 and "flags 98% of the validation images" in almost["warning"]
    good = check_threshold(labels, scores, 0.85)
    assert good["warning"] is None and good["recall"] == 1.0 and good["precision"] == 1.0
    assert check_threshold(np.zeros(4, int), np.arange(4.0), 1.5)["recall"] is None  # no anomaly: no recall, no NaN
    assert not math.isnan(check_threshold(np.zeros(4, int), np.arange(4.0), 1.5)["flagged_share"])
