"""Acquisition shifts: deterministic, shape- and dtype-preserving, the identity at strength 0, and stronger with
strength by a statistic that says what each one does."""

from __future__ import annotations

import numpy as np
import pytest

from hamtune.data.shifts import SHIFTS, parse_shifts, parse_strengths
from hamtune.errors import UsageError


def _lesions(channels: int = 3, n: int = 6, size: int = 32) -> np.ndarray:
    """Skin-toned images with a darker blob and some texture: what the shifts act on in practice."""
    rng = np.random.default_rng(7)
    y, x = np.mgrid[0:size, 0:size]
    blob = ((y - size / 2) ** 2 + (x - size / 2) ** 2 < (size / 4) ** 2)[None, :, :, None]
    skin = np.array([200, 150, 130][:channels] if channels == 3 else [165], dtype=np.float32)
    images = skin - 80 * blob + rng.normal(0, 12, (n, size, size, channels))
    return np.clip(images, 0, 255).astype(np.uint8)


def _detail(images: np.ndarray) -> float:
    values = images.astype(float)
    return float(np.abs(np.diff(values, axis=1)).mean() + np.abs(np.diff(values, axis=2)).mean())


def _corner_ratio(images: np.ndarray) -> float:
    values = images.astype(float).mean(axis=-1)
    return float(values[:, :4, :4].mean() / values[:, 14:18, 14:18].mean())


ORIGINAL = _lesions()
STATISTIC = {  # a number each shift moves one way as its strength grows (sign: +1 grows, -1 shrinks)
    "white_balance": (lambda im: float(im[..., 0].mean() - im[..., 2].mean()), +1),
    "brightness": (lambda im: float(im.mean()), +1),
    "contrast": (lambda im: float(im.astype(float).std(axis=(1, 2, 3)).mean()), -1),
    "defocus": (_detail, -1),
    "jpeg": (lambda im: float(np.abs(im.astype(float) - ORIGINAL).mean()), +1),
    "resolution": (_detail, -1),
    "vignette": (_corner_ratio, -1),
    "hair": (lambda im: float((im != ORIGINAL).any(axis=-1).mean()), +1),
}


def test_every_shift_has_a_statistic():
    assert set(STATISTIC) == set(SHIFTS)


@pytest.mark.parametrize("name", sorted(SHIFTS))
@pytest.mark.parametrize("channels", [3, 1])
def test_a_shift_keeps_shape_and_dtype_is_deterministic_and_the_identity_at_zero(name, channels):
    images = _lesions(channels)
    shift = SHIFTS[name]
    assert np.array_equal(shift(images, 0.0), images)
    once, again = shift(images, 0.5, seed=3), shift(images.copy(), 0.5, seed=3)
    assert once.dtype == np.uint8 and once.shape == images.shape
    assert np.array_equal(once, again)
    assert not np.array_equal(once, images)
    assert np.array_equal(images, _lesions(channels))  # the input is left as it was


@pytest.mark.parametrize("name", sorted(SHIFTS))
def test_a_stronger_shift_moves_its_statistic_further(name):
    statistic, sign = STATISTIC[name]
    values = [sign * statistic(SHIFTS[name](ORIGINAL, s, seed=0)) for s in (0.0, 0.25, 0.5, 1.0)]
    assert values == sorted(values) and values[0] < values[-1], (name, values)


def test_hairs_differ_by_seed_and_by_image():
    one, other = SHIFTS["hair"](ORIGINAL, 1.0, seed=0), SHIFTS["hair"](ORIGINAL, 1.0, seed=1)
    covered = (one != ORIGINAL).any(axis=-1)
    assert not np.array_equal(one, other)
    assert not np.array_equal(covered[0], covered[1])


def test_names_and_strengths_are_checked_as_flags():
    assert [s.name for s in parse_shifts("jpeg, hair")] == ["jpeg", "hair"]
    assert len(parse_shifts(None)) == len(SHIFTS)
    assert parse_strengths("1,0.5") == [0.5, 1.0]
    for bad in ("fog", "jpeg,fog", ""):
        with pytest.raises(UsageError, match="--shifts"):
            parse_shifts(bad)
    for bad in ("0", "1.5", "x", "-0.1"):
        with pytest.raises(UsageError, match="--strengths"):
            parse_strengths(bad)
