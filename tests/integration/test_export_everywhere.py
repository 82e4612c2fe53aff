"""Every model exports everywhere (issue 31, item 5): a seed ensemble as one graph (ONNX and torch.export) that
scores real JPEGs as the PyTorch bundle does, score.onnx's anomaly-map output, golden vectors that `hamtune verify`
recomputes, and a model card that lists every file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import REAL_SAMPLE, assert_one_line_error, needs_shared, run_cli

from hamtune.cli import main
from hamtune.data.images import RESIZE_RULE
from hamtune.export import integrity
from hamtune.export.bundle import CARD, META, NAMES, EnsembleBundle, load_bundle
from hamtune.export.golden import GOLDEN, read_golden
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow
SAMPLE = next((p for p in (REAL_SAMPLE, Path("/work/shared/data/ham10000_sample")) if p.exists()), REAL_SAMPLE)
ort = pytest.importorskip("onnxruntime", reason='the optional extra: pip install "hamtune[onnx]"')


@pytest.fixture(scope="module")
def seeds(prepared, tmp_path_factory) -> Path:
    """`hamtune train --seeds 2` of a tiny CNN AE scored mse+ssim (one epoch): two seeds and their ensemble."""
    root = tmp_path_factory.mktemp("seeds")
    assert (
        main(
            [
                "train",
                "--preset",
                "cnn-ae",
                "--data",
                str(prepared.path),
                "--results",
                str(root),
                "--name",
                "s",
                "--seeds",
                "2",
                "--set",
                "epochs=1",
                "--set",
                "cnn_channels=8",
                "--set",
                "score=mse+ssim",
            ]
        )
        == 0
    )
    return root / "s"


@pytest.fixture(scope="module")
def ensemble(seeds, tmp_path_factory) -> Path:
    trials = load_results(seeds)[0]
    trial = trials[trials["kind"] == "ensemble"].iloc[0]["trial_id"]
    out = tmp_path_factory.mktemp("bundle") / "ens"
    assert main(["export", str(seeds), "--trial", trial, "--out", str(out), "--format", "onnx", "--format", "torch-export"]) == 0
    return out


def jpegs(release_dir: Path, folder: Path) -> list[Path]:
    return sorted(release_dir.glob("HAM10000_images_part_1/*.jpg"))[:12] + sorted(folder.glob("*.jpg"))[:12]


def scores(capsys, bundle: Path, images: list[Path], program: str, tmp_path: Path) -> pd.DataFrame:
    csv = tmp_path / f"{program}.csv"
    code, _, err = run_cli(capsys, "score", bundle, *images, "--out", csv, "--program", program, "--no-progress")
    assert code == 0, err
    return pd.read_csv(csv)


def relative_error(found: pd.Series, expected: pd.Series) -> float:
    return float(((found - expected).abs() / expected.abs().clip(lower=1)).max())


def test_a_seed_ensemble_is_one_graph_in_onnx_and_torch_export_and_scores_as_pytorch(capsys, ensemble, release_dir, tmp_path):
    bundle = load_bundle(ensemble)
    assert isinstance(bundle, EnsembleBundle) and len(bundle.members) == 2
    assert {"score.onnx", "model.pt2", GOLDEN} <= {p.name for p in ensemble.iterdir()}
    images = jpegs(release_dir, SAMPLE)
    torch_scores = scores(capsys, ensemble, images, "torch", tmp_path)
    assert len(torch_scores) == len(images) and torch_scores["score"].std() > 1e-3
    for program in ("onnx", "torch-export"):
        theirs = scores(capsys, ensemble, images, program, tmp_path)
        assert list(theirs["image"]) == list(torch_scores["image"])
        assert relative_error(theirs["score"], torch_scores["score"]) <= 1e-5, program
        assert (theirs["flagged"] == torch_scores["flagged"]).all()
    session = ort.InferenceSession(str(ensemble / "score.onnx"))
    meta = session.get_modelmeta().custom_metadata_map
    members = json.loads(meta["members"])
    assert [(m["center"], m["scale"]) for m in members] == [(m["center"], m["scale"]) for m in bundle.info["members"]]
    assert meta["resize"] == RESIZE_RULE and json.loads(meta["outputs"]) == ["score", "map"] and meta["map_output"] == "map"


@needs_shared(SAMPLE)
def test_onnx_equals_torch_on_real_jpegs(capsys, ensemble, tmp_path):
    images = sorted(SAMPLE.glob("*.jpg"))[:30]
    mine, theirs = scores(capsys, ensemble, images, "torch", tmp_path), scores(capsys, ensemble, images, "onnx", tmp_path)
    assert relative_error(theirs["score"], mine["score"]) <= 1e-5
    assert (theirs["flagged"] == mine["flagged"]).all()


def test_the_map_output_of_score_onnx_is_the_anomaly_map_of_hamtune_score_maps(ensemble, release_dir):
    from hamtune.export.maps import Mapper

    bundle = load_bundle(ensemble)
    golden = read_golden(ensemble / GOLDEN)
    session = ort.InferenceSession(str(ensemble / "score.onnx"))
    score, maps = session.run(["score", "map"], {"images": golden.images})
    expected, _ = Mapper(bundle, "cpu")(golden.images)
    assert maps.shape == expected.shape == golden.images.shape[:3]
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(maps.mean((1, 2)), score, rtol=1e-4, atol=1e-4)  # a map's mean is its score


@pytest.mark.parametrize("program", ["torch", "onnx", "pt2"])
def test_verify_passes_on_a_fresh_bundle(capsys, ensemble, program):
    code, out, err = run_cli(capsys, "verify", ensemble, "--program", program)
    assert code == 0, err
    assert "verified 4 golden vector(s)" in out


def copy(bundle: Path, to: Path) -> Path:
    shutil.copytree(bundle, to)
    return to


def test_verify_fails_on_a_tampered_golden_vector_and_on_an_unsealed_edit(capsys, ensemble, tmp_path):
    bundle = copy(ensemble, tmp_path / "b")
    golden = dict(np.load(bundle / GOLDEN, allow_pickle=False))
    golden["scores"] = golden["scores"].copy()
    golden["scores"][1] += 0.01 * max(1.0, abs(golden["scores"][1]))
    np.savez(bundle / GOLDEN, **golden)
    code, _, err = run_cli(capsys, "verify", bundle)
    assert_one_line_error(code, err, "golden.npz", "sha256 differs")  # not resealed: refused on its digest
    info = json.loads((bundle / META).read_text())
    info[integrity.DIGESTS] = integrity.digests(bundle, NAMES, META)
    (bundle / META).write_text(json.dumps(info))
    for program in ("torch", "onnx"):
        code, _, err = run_cli(capsys, "verify", bundle, "--program", program)
        assert_one_line_error(code, err, "does not reproduce the golden vectors", f"vector 2 ({golden['names'][1]})")


def test_the_card_lists_every_file_the_exact_resize_and_the_golden_vectors(ensemble, seeds, prepared):
    card = (ensemble / CARD).read_text()
    files = [*integrity.listing(ensemble, NAMES, META), META]
    assert any(f.startswith("members/1/") for f in files)
    for name in files:
        assert f"`{name}`" in card, name
    assert RESIZE_RULE in card and "hamtune verify" in card
    info = json.loads((ensemble / META).read_text())
    assert info["golden"]["count"] == 4 and "validation split" in info["golden"]["source"]
    golden = read_golden(ensemble / GOLDEN)
    ids = set(prepared.meta["image_id"].astype(str))
    assert set(golden.names) <= ids
    rows = [int(np.flatnonzero(prepared.meta["image_id"].astype(str).to_numpy() == n)[0]) for n in golden.names]
    np.testing.assert_array_equal(golden.images, prepared.images[rows])  # the exact uint8 tensors of those images
    assert (golden.flagged == (golden.scores > info["threshold"])).all()


def test_a_threshold_that_flags_every_validation_image_is_logged_and_in_the_card(ensemble, tmp_path, caplog):
    from hamtune.export.bundle import finish

    bundle_dir = copy(ensemble, tmp_path / "b")
    bundle, golden = load_bundle(bundle_dir), read_golden(ensemble / GOLDEN)
    info = json.loads((bundle_dir / META).read_text())
    info.pop("threshold_check")
    scores = bundle.threshold + np.array([0.1, 0.2, 0.3, 0.4])  # every validation image above the threshold
    with caplog.at_level("WARNING", logger="hamtune.export.bundle"):
        finish(bundle_dir, info, None, validation=(golden.images, np.array([0, 0, 1, 1]), golden.names, scores))
    assert "at or below the lowest validation score" in caplog.text and "flags every image" in caplog.text
    assert "**Warning:**" in (bundle_dir / CARD).read_text() and "**Warning:**" not in (ensemble / CARD).read_text()
    assert json.loads((bundle_dir / META).read_text())["threshold_check"]["flagged_share"] == 1.0
    load_bundle(bundle_dir)  # sealed again: its digests hold
