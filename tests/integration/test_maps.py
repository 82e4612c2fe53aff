"""`hamtune score --maps`: each image's anomaly map is the map of the model's own score, and its mean is the
score that `hamtune score` writes for that image (mse, ssim, mse+ssim, with and without test-time flips,
and a seed ensemble)."""

from __future__ import annotations

import base64
import io
import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

import hamtune
from hamtune.cli import main
from hamtune.data.prepare import load_prepared
from hamtune.export.bundle import EnsembleBundle, load_bundle
from hamtune.export.maps import Mapper
from hamtune.report.maps import DISPLAY, NORMALS, QUANTILES
from hamtune.results.numbers import fmt
from hamtune.results.store import load_results
from hamtune.train.data import plan_splits

pytestmark = pytest.mark.slow
SCORES = {"mse": [], "ssim": ["--set", "kind=vae"], "mse+ssim": ["--set", "tta=true"], "mse+latent": []}


@pytest.fixture(scope="module")
def root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("maps")


@pytest.fixture(scope="module")
def bundles(release_dir, root) -> dict[str, Path]:
    """One trained and exported model per score (1 epoch at 28 px: the maps need a model, not a good one)."""
    out = {}
    for score, extra in SCORES.items():
        name = score.replace("+", "-")
        assert (
            main(
                [
                    "train",
                    "--data",
                    str(release_dir),
                    "--set",
                    "image_size=28",
                    "--set",
                    "epochs=1",
                    "--set",
                    "arch=cnn",
                    "--set",
                    "cnn_channels=8",
                    "--set",
                    f"score={score}",
                    *extra,
                    "--results",
                    str(root),
                    "--name",
                    name,
                ]
            )
            == 0
        )
        assert main(["export", str(root / name), "--rank", "1", "--out", str(root / "bundles" / name)]) == 0
        out[score] = root / "bundles" / name
    # a seed ensemble (the delivered model of train --seeds): its members' maps standardised and averaged
    assert (
        main(
            [
                "train",
                "--data",
                str(release_dir),
                "--set",
                "image_size=28",
                "--set",
                "epochs=1",
                "--set",
                "score=ssim",
                "--seeds",
                "2",
                "--results",
                str(root),
                "--name",
                "seeds",
            ]
        )
        == 0
    )
    trials = load_results(root / "seeds")[0]
    ensemble = str(trials.loc[trials["kind"] == "ensemble", "trial_id"].iloc[0])
    assert main(["export", str(root / "seeds"), "--trial", ensemble, "--out", str(root / "bundles" / "ensemble")]) == 0
    out["ensemble"] = root / "bundles" / "ensemble"
    return out


@pytest.fixture(scope="module")
def jpegs(release_dir, tmp_path_factory) -> Path:
    """Six JPEGs of the release, two of them under the same file name in another folder."""
    folder = tmp_path_factory.mktemp("jpegs")
    sources = sorted(release_dir.glob("HAM10000_images_part_1/*.jpg"))[:4]
    (folder / "again").mkdir()
    for source in sources:
        shutil.copy(source, folder / source.name)
    for source in sources[:2]:
        shutil.copy(source, folder / "again" / source.name)
    return folder


@pytest.mark.parametrize("score", ["mse", "ssim", "mse+ssim", "ensemble"])
def test_a_maps_mean_reproduces_the_images_score(score, bundles, jpegs, tmp_path, capsys):
    out, maps = tmp_path / "scores.csv", tmp_path / "maps"
    assert main(["score", str(bundles[score]), str(jpegs), "--out", str(out), "--maps", str(maps), "--no-progress"]) == 0
    assert "anomaly maps" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert isinstance(load_bundle(bundles[score]), EnsembleBundle) == (score == "ensemble")
    assert len(table) == 6 and table["map"].nunique() == 6  # the repeated file names got their own maps
    for row in table.itertuples():
        values = np.load(maps / f"{row.map}.npy")
        assert values.shape == (28, 28) and values.dtype == np.float32
        assert float(values.astype(np.float64).mean()) == pytest.approx(row.score, rel=1e-5, abs=1e-6)
        with Image.open(maps / f"{row.map}.png") as png:
            assert png.mode == "RGB" and png.width == 3 * png.height and png.height >= 128  # three square panels
            panels = np.asarray(png)
        assert not np.array_equal(panels[:, : png.height], panels[:, 2 * png.height :])  # the heat is on the image


def test_maps_of_a_prepared_cache_through_the_api(bundles, prepared, tmp_path):
    table = hamtune.score(bundles["mse+ssim"], prepared.path, maps=tmp_path / "maps")
    assert len(table) == len(prepared.images) and (table["map"] == table["image"]).all()
    means = np.array([np.load(tmp_path / "maps" / f"{name}.npy").astype(np.float64).mean() for name in table["map"]])
    np.testing.assert_allclose(means, table["score"], rtol=1e-5, atol=1e-6)


def test_a_score_without_a_map_is_refused_before_anything_is_written(bundles, jpegs, tmp_path, capsys):
    out, maps = tmp_path / "scores.csv", tmp_path / "maps"
    assert main(["score", str(bundles["mse+latent"]), str(jpegs), "--out", str(out), "--maps", str(maps)]) != 0
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "score mse+latent has no anomaly map" in err and "latent" in err
    assert not out.exists() and not maps.exists()


@pytest.fixture(scope="module")
def section(bundles, root) -> str:
    """The maps section of the mse+ssim model's report (written once for the tests that read it)."""
    html = root / "report.html"
    assert main(["report", str(root / "mse-ssim"), "--html", str(html)]) == 0
    return html.read_text(encoding="utf-8").split('<section id="maps">')[1].split("</section>")[0]


def test_the_report_shows_the_chosen_models_extremes_per_diagnosis_with_their_maps(section, root):
    scores = load_results(root / "mse-ssim")[2]
    dx = scores["dx"].value_counts()
    assert section.count("<figure><img alt=") == 2 * (dx > 1).sum() + (dx == 1).sum()
    captions = re.findall(r"<figcaption>(\w+), (highest|lowest) score: (\w+), score (\S+) \(map mean (\S+)\)</figcaption>", section)
    assert len(captions) == section.count("<figure><img alt=")
    by_id = scores.set_index("image_id")["score"]
    for code, which, image_id, score, mean in captions:
        group = scores.loc[scores["dx"] == code, "score"]
        assert by_id[image_id] == (group.max() if which == "highest" else group.min())
        assert float(mean) == pytest.approx(float(score), rel=2e-3, abs=1e-4)  # both as the report rounds them


def test_the_report_says_why_a_latent_score_has_no_maps(bundles, root, tmp_path):
    html = tmp_path / "report.html"
    assert main(["report", str(root / "mse-latent"), "--html", str(html)]) == 0
    section = html.read_text(encoding="utf-8").split('<section id="maps">')[1].split("</section>")[0]
    assert "No anomaly maps for" in section and "has no anomaly map" in section and "<img" not in section


def test_the_reports_maps_share_one_scale_fixed_on_validation_normals_and_sit_over_the_original_photos(section, bundles, root):
    trials = load_results(root / "mse-ssim")[0]
    bundle = load_bundle(bundles["mse+ssim"])
    data = load_prepared(trials["data_path"].iloc[0])
    plan = plan_splits(data, bundle.config)
    normals = plan.val[plan.labels[plan.val] == 0]
    assert 0 < len(normals) <= NORMALS  # so the report maps all of them
    mapper = Mapper(bundle, "cpu")
    low, high = np.percentile(mapper(data.images[normals])[0].astype(np.float64), QUANTILES)
    assert "validation normals&#x27; median (blue) to their 99th percentile (red)" in section
    assert f'{fmt(low)} <img alt="colour bar from {fmt(low)} to {fmt(high)}" src="data:image/png;base64,' in section
    tested = np.percentile(mapper(data.images[plan.test])[0].astype(np.float64), QUANTILES)
    assert (fmt(tested[0]), fmt(tested[1])) != (fmt(low), fmt(high))  # the test images would have given another scale
    figures = section.count("<figure><img alt=")
    assert figures and section.count(': the map over the original photo" src=') == figures  # the release layout keeps its photos
    over = re.search(r'the map over the original photo" src="data:image/png;base64,([^"]+)"', section)[1]
    with Image.open(io.BytesIO(base64.b64decode(over))) as png:
        assert png.size == (DISPLAY, DISPLAY)
