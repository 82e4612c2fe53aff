"""`hamtune export` then `hamtune score`: the exported model scores images exactly as its trial did."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import roc_auc_score

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.export import PROGRAMS
from hamtune.export.bundle import CARD, CONFIG, META, SCORE_STATE, WEIGHTS, export_trial, load_bundle, model_card
from hamtune.export.score import score_inputs
from hamtune.results.rank import top_trials
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(sweep_results, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("export") / "best"
    assert main(["export", str(sweep_results), "--rank", "1", "--out", str(out)]) == 0
    return out


@pytest.fixture(scope="module")
def best(sweep_results) -> pd.Series:
    return top_trials(sweep_results, 1)[0].iloc[0]


@pytest.fixture(scope="module")
def trial_scores(sweep_results, best) -> pd.DataFrame:
    scores = load_results(sweep_results)[2]
    return scores[scores["trial_id"] == best["trial_id"]].set_index("image_id")


def test_bundle_holds_weights_config_preprocessing_threshold_and_card(exported, best, prepared):
    assert {p.name for p in exported.iterdir()} == {WEIGHTS, SCORE_STATE, CONFIG, META, CARD, "golden.npz"}
    state = torch.load(exported / WEIGHTS, weights_only=True)
    assert state and all(isinstance(v, torch.Tensor) for v in state.values())
    info = json.loads((exported / META).read_text())
    assert info["trial_id"] == best["trial_id"] and info["rank"] == 1 and info["ranked_by"] == "val_auroc"
    assert info["threshold"] == best["threshold"] and info["data"]["fingerprint"] == prepared.fingerprint
    pre = prepared.preprocess
    assert info["preprocess"] == {"size": pre.size, "crop": pre.crop, "channels": pre.channels, "input_range": best["input_range"]}
    assert info["protocol"]["name"] == "cancer" and info["metrics"]["test_auroc"] == best["test_auroc"]
    assert info["data"]["synthetic"] is True
    config = json.loads((exported / CONFIG).read_text())
    assert config["kind"] == best["kind"] and config["seed"] == best["seed"]
    card = (exported / CARD).read_text()
    assert "synthetic data" in card and f"{best['threshold']:.4g}" in card and "not a medical device" in card
    assert info["golden"]["count"] == 4 and info["threshold_check"]["validation_images"] > 0
    assert all(f"`{name}`" in card for name in (WEIGHTS, SCORE_STATE, CONFIG, META, CARD, "golden.npz"))
    bundle = load_bundle(exported)
    assert "CC BY-NC" in model_card({**bundle.info, "data": {**bundle.info["data"], "synthetic": False}}, bundle.config)


def test_scoring_the_prepared_data_gives_the_trials_test_scores(exported, prepared, trial_scores, best, tmp_path):
    out = tmp_path / "scores.csv"
    assert main(["score", str(exported), str(prepared.path), "--out", str(out)]) == 0
    table = pd.read_csv(out).set_index("image")
    assert len(table) == len(prepared.images) and {"score", "flagged", "dx", "label"} <= set(table.columns)
    mine = table.loc[trial_scores.index]
    np.testing.assert_allclose(mine["score"], trial_scores["score"], rtol=0, atol=1e-5)
    assert (mine["label"] == trial_scores["label"]).all() and (mine["dx"] == trial_scores["dx"]).all()
    assert roc_auc_score(mine["label"], mine["score"]) == pytest.approx(best["test_auroc"], abs=1e-4)  # its leaderboard row
    threshold = json.loads((exported / META).read_text())["threshold"]
    assert (table["flagged"] == (table["score"] > threshold)).all()


def test_scoring_jpeg_files_matches_training_and_skips_unreadable_ones(exported, release_dir, trial_scores, tmp_path, capsys):
    folder = tmp_path / "images"
    (folder / "nested").mkdir(parents=True)
    ids = list(trial_scores.index[:6])
    for i, image_id in enumerate(ids):
        source = next(release_dir.glob(f"HAM10000_images_part_*/{image_id}.jpg"))
        shutil.copy(source, folder / ("nested" if i % 2 else "") / f"{image_id}.jpg")
    (folder / "corrupt.jpg").write_bytes(source.read_bytes()[:300])
    (folder / "notes.txt").write_text("not an image")
    (folder / "nested" / "fake.png").write_text("not an image either")
    out = tmp_path / "scores.csv"
    assert main(["score", str(exported), str(folder), str(tmp_path / "missing.jpg"), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    table = pd.read_csv(out)
    assert len(table) == len(ids) and list(table.columns) == ["image", "score", "flagged"]
    by_id = table.assign(image_id=[Path(p).stem for p in table["image"]]).set_index("image_id")
    np.testing.assert_allclose(by_id.loc[ids, "score"], trial_scores.loc[ids, "score"], rtol=0, atol=1e-5)
    errors = [line for line in captured.err.splitlines() if line.startswith("hamtune: skipped")]
    assert len(errors) == 3 and any("corrupt.jpg" in e for e in errors) and any("fake.png" in e for e in errors)
    assert "3 input(s) could not be read" in captured.err and f"scored {len(ids)} image(s)" in captured.out


def test_nothing_readable_is_an_error(exported, tmp_path):
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff garbage")
    with pytest.raises(HamtuneError, match="no readable image"):
        score_inputs(load_bundle(exported), [tmp_path / "bad.jpg"], progress=False)


def test_export_ranks_like_reproduce_and_refuses_to_overwrite(sweep_results, exported, tmp_path):
    out, row = export_trial(sweep_results, 2, tmp_path / "second")
    assert row["trial_id"] == top_trials(sweep_results, 2)[0].iloc[1]["trial_id"]
    assert json.loads((out / META).read_text())["rank"] == 2
    with pytest.raises(HamtuneError, match="pass --force"):
        export_trial(sweep_results, 1, out)
    with pytest.raises(HamtuneError, match="--rank 9 does not exist"):
        export_trial(sweep_results, 9, tmp_path / "ninth")


@pytest.mark.parametrize("fmt", sorted(PROGRAMS))  # every portable format, so a new one is tested by being added
def test_each_portable_format_scores_a_folder_as_the_pytorch_bundle_does(sweep_results, release_dir, tmp_path, fmt):
    if fmt == "onnx":
        pytest.importorskip("onnxruntime", reason='the optional extra: pip install "hamtune[onnx]"')
    out = tmp_path / "bundle"
    assert main(["export", str(sweep_results), "--out", str(out), "--format", fmt]) == 0
    program = out / PROGRAMS[fmt]
    assert program.stat().st_size > 0
    folder = release_dir / "HAM10000_images_part_1"
    tables = {}
    for name in ("torch", fmt):
        csv = tmp_path / f"{name}.csv"
        assert main(["score", str(out), str(folder), "--out", str(csv), "--format", name, "--no-progress"]) == 0
        tables[name] = pd.read_csv(csv)
    assert len(tables["torch"]) == len(list(folder.glob("*.jpg"))) > 0
    assert list(tables[fmt]["image"]) == list(tables["torch"]["image"])
    np.testing.assert_allclose(tables[fmt]["score"], tables["torch"]["score"], rtol=1e-4, atol=1e-6)
    assert (tables[fmt]["flagged"] == tables["torch"]["flagged"]).all()
    with (
        pytest.raises(HamtuneError, match=r"model.pt2: missing; export the model with --format torch-export")
        if fmt == "onnx"
        else pytest.raises(HamtuneError, match=r"model.onnx: missing; export the model with --format onnx")
    ):
        score_inputs(load_bundle(out), [folder], progress=False, format="torch-export" if fmt == "onnx" else "onnx")


def test_onnx_without_its_extra_is_a_one_line_error_naming_the_install(sweep_results, tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # what a machine without the extra sees: ImportError
    out = tmp_path / "bundle"
    assert main(["export", str(sweep_results), "--out", str(out), "--format", "onnx"]) != 0
    assert capsys.readouterr().err == 'hamtune: error: ONNX export and scoring need the optional extra: pip install "hamtune[onnx]"\n'
    assert not out.exists()  # checked before anything is written
