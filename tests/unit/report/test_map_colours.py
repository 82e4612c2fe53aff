"""The report's anomaly maps share one colour scale, and are shown over the original photo where the data has one."""

from __future__ import annotations

import dataclasses

import numpy as np
from formats import write_dermamnist
from PIL import Image

from hamtune.data.prepare import load_prepared, prepare
from hamtune.export.maps import HEAT, heat
from hamtune.report.maps import DISPLAY, colour_bar, originals


def test_maps_on_one_scale_colour_equal_values_alike_and_a_higher_map_redder():
    scale = (0.1, 0.5)
    quiet = np.array([[0.0, 0.05], [0.3, 0.2]], dtype=np.float32)
    loud = np.array([[0.3, 0.45], [0.6, 0.7]], dtype=np.float32)
    a, b = heat(quiet, scale), heat(loud, scale)
    assert (a[1, 0] == b[0, 0]).all()  # 0.3 is one colour in both maps
    redness = [(c[..., 0].astype(float) - c[..., 2]).mean() for c in (a, b)]
    assert redness[1] > redness[0]
    assert (a[0, 0] == HEAT[0]).all() and (b[1, 1] == HEAT[-1]).all()  # below low and above high are clipped
    assert (heat(quiet)[1, 0] == HEAT[-1]).all() and (heat(loud)[0, 0] == HEAT[0]).all()  # each over its own range: not


def test_the_colour_bar_runs_from_the_low_colour_to_the_high_one():
    bar = np.asarray(colour_bar((0.2, 0.9)))
    assert bar.shape == (12, DISPLAY, 3) and (bar[:, 0] == HEAT[0]).all() and (bar[:, -1] == HEAT[-1]).all()


def test_the_original_photo_is_cropped_as_the_data_was_prepared(prepared):
    ids = prepared.meta["image_id"].astype(str).tolist()[:3]
    photos, missing = originals(prepared, ids)
    assert missing == "" and all(p.shape == (DISPLAY, DISPLAY, 3) for p in photos)
    for photo, cached in zip(photos, prepared.images[:3]):
        small = np.asarray(Image.fromarray(photo).resize(cached.shape[:2], Image.BILINEAR), dtype=float)
        assert np.abs(small - cached).mean() < 6  # the same image under the same crop (not only its size)
        assert np.abs(small - prepared.images[3]).mean() > np.abs(small - cached).mean()


def test_no_original_photo_for_arrays_or_a_moved_source_says_why(prepared, tmp_path):
    rng = np.random.default_rng(0)
    dx = ["nv"] * 30 + ["mel"] * 10
    arrays = load_prepared(
        prepare(
            write_dermamnist(tmp_path / "dermamnist.npz", rng.integers(0, 255, (40, 28, 28, 3), np.uint8), dx),
            out=tmp_path / "prepared",
            progress=False,
        )
    )
    photos, missing = originals(arrays, ["x"])
    assert photos == [None] and "dermamnist source holds arrays" in missing
    moved = dataclasses.replace(prepared, manifest={**prepared.manifest, "source": str(tmp_path / "gone" / "HAM10000_metadata.csv")})
    photos, missing = originals(moved, prepared.meta["image_id"].astype(str).tolist()[:2])
    assert photos == [None, None] and "gone" in missing
