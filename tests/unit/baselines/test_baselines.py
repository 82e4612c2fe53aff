"""Classical baselines: fitted on training normals only, on the deep models' exact splits, ranked beside them."""

from __future__ import annotations

import contextlib
import io
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hamtune.baselines import parse_method, parse_methods, run_baselines
from hamtune.baselines.classical import BLUR_SIGMAS, RESAMPLE_FACTORS, blur, knn, pca, pixels, resample
from hamtune.baselines.run import Split, evaluate_method, reconstruction_terms, split_images
from hamtune.cli import main as cli_main
from hamtune.data.prepare import Prepared
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError
from hamtune.report.__main__ import main as report_main
from hamtune.report.load import combine, load_sweeps
from hamtune.results.layout import EPOCHS
from hamtune.results.rank import rank, resolve_metric, verdict
from hamtune.results.store import SCHEMA_VERSION, load_results, load_samples
from hamtune.train.config import TrainConfig
from hamtune.train.data import plan_splits
from hamtune.train.metrics import choose_threshold

METHODS = "pca-8,iforest-50,knn-3"
DEEP = ["--set", "arch=mlp", "--set", "mlp_width=64", "--set", "latent_dim=8", "--set", "epochs=1", "--set", "norm=none"]


@pytest.fixture(scope="module")
def results(prepared, tmp_path_factory) -> Path:
    """A one-epoch deep model (`hamtune train`) and the baselines (`hamtune baselines`) on the same data."""
    root = tmp_path_factory.mktemp("baseline-results")
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", "--data", str(prepared.path), *DEEP, "--results", str(root), "--name", "deep"]) == 0
        assert cli_main(["baselines", str(prepared.path), "--methods", METHODS, "--results", str(root)]) == 0
    return root


def test_rows_follow_the_results_schema_and_name_the_model(results, prepared):
    trials, epochs, scores = load_results(results / "baselines")
    assert list(trials["model"]) == ["pca-8", "pca-8-ssim", "pca-8-mse+ssim", "iforest-50", "knn-3"]
    assert (trials["schema_version"] == SCHEMA_VERSION).all() and (trials["status"] == "completed").all()
    assert trials["kind"].isna().all() and trials["arch"].isna().all() and trials["lr"].isna().all()
    assert set(trials["baseline"]) == {"pca", "iforest", "knn"}
    assert (trials["protocol"] == "cancer").all() and (trials["image_size"] == 28).all()
    assert trials["test_set"].str.startswith(f"{prepared.name}:test-split (cancer, split seed 0)").all()
    assert trials["test_fingerprint"].nunique() == 1
    assert trials["test_auroc"].between(0, 1).all() and np.isfinite(trials["threshold"]).all()
    pca_row = trials.set_index("model").loc["pca-8"]
    assert pca_row["latent_dim"] == 8 and 0 < pca_row["test_ssim"] <= 1 and pca_row["test_mse"] > 0
    assert trials.set_index("model").loc[["iforest-50", "knn-3"], ["test_mse", "test_ssim"]].isna().all().all()
    assert len(epochs) == 0 and not (results / "baselines" / EPOCHS).exists()
    assert set(scores["trial_id"]) == set(trials["trial_id"])
    assert set(load_samples(results / "baselines", pca_row["trial_id"])) >= {"original", "reconstruction"}


def test_train_and_baselines_record_their_choice_on_validation(results):
    """Every command that writes trials.parquet records the chosen model last (results.chosen)."""
    from hamtune.results.chosen import read_chosen

    deep, classical = read_chosen(results / "deep"), read_chosen(results / "baselines")
    assert deep.trial_id == load_results(results / "deep")[0]["trial_id"].iloc[0] and deep.kind == "ae"
    assert type(deep.config["latent_dim"]) is int and deep.config["latent_dim"] == 8
    trials = load_results(results / "baselines")[0]
    assert classical.trial_id == trials.loc[trials["val_auroc"].idxmax(), "trial_id"] and classical.role.startswith("classical:")


def test_baselines_score_exactly_the_deep_models_test_images(results, prepared):
    deep_scores = load_results(results / "deep")[2]
    baseline_scores = load_results(results / "baselines")[2]
    plan = plan_splits(prepared, TrainConfig())
    expected = sorted(prepared.meta["image_id"].to_numpy(str)[plan.test])
    assert sorted(deep_scores["image_id"]) == expected
    for _, group in baseline_scores.groupby("trial_id"):
        assert sorted(group["image_id"]) == expected
        assert (group.sort_values("image_id")["label"].to_numpy() == deep_scores.sort_values("image_id")["label"].to_numpy()).all()


def test_a_rerun_replaces_its_rows_instead_of_adding_new_ones(results, prepared):
    config = TrainConfig(image_size=28)
    before = load_results(results / "baselines")[0]
    run_baselines(config, prepared, parse_methods(["knn-3"]), results / "baselines", "baselines")
    after = load_results(results / "baselines")[0]
    assert len(after) == len(before) and set(after["trial_id"]) == set(before["trial_id"])


def _splits(prepared: Prepared) -> tuple[np.ndarray, Split, Split]:
    plan = plan_splits(prepared, TrainConfig())
    return (
        pixels(prepared.images[plan.train]),
        split_images(prepared, plan.val, plan.labels),
        split_images(prepared, plan.test, plan.labels),
    )


def test_the_threshold_is_chosen_on_validation_and_never_sees_test_labels(prepared):
    train, val, test = _splits(prepared)
    scorer = pca(train, 8)
    val_scored, test_scored = scorer(val.x), scorer(test.x)
    protocol = get_protocol("cancer")
    result, _ = evaluate_method(val, test, val_scored, test_scored, protocol)
    assert result["threshold"] == choose_threshold(val.labels, val_scored.scores)
    flipped = Split(test.x, 1 - test.labels, test.dx, test.image_id, test.shape)
    other, _ = evaluate_method(val, flipped, val_scored, test_scored, protocol)
    assert other["threshold"] == result["threshold"] and other["test_auroc"] == pytest.approx(1 - result["test_auroc"])


def test_only_training_normals_are_fitted(prepared, tmp_path):
    plan = plan_splits(prepared, TrainConfig())
    assert (plan.labels[plan.train] == 0).all()
    method, fitted = parse_method("knn-3"), {}

    def spy(x: np.ndarray, shape: tuple[int, int, int]):
        fitted["x"] = x
        return knn(x, 3)

    object.__setattr__(method, "candidates", (("", spy),))
    run_baselines(TrainConfig(image_size=28), prepared, [method], tmp_path / "spy", "spy")
    assert np.array_equal(fitted["x"], pixels(prepared.images[plan.train]))


def _patterned(prepared: Prepared, patterns: int) -> Prepared:
    """The fixture's metadata with images rebuilt: every normal one of a few fixed patterns, every anomaly noise."""
    rng = np.random.default_rng(0)
    labels = get_protocol("cancer").labels(prepared.meta["dx"].to_numpy())
    shape = prepared.images.shape
    library = rng.integers(0, 256, (patterns, *shape[1:]), dtype=np.uint8)
    images = rng.integers(0, 256, shape, dtype=np.uint8)
    normal = np.flatnonzero(labels == 0)
    images[normal] = library[rng.integers(0, patterns, len(normal))]
    manifest = {**prepared.manifest, "fingerprint": "patterned", "name": "patterned"}
    return Prepared(prepared.path, images, prepared.meta, manifest)


def test_pca_reconstructs_images_inside_its_subspace_perfectly_and_flags_the_rest(prepared, tmp_path):
    data = _patterned(prepared, patterns=4)  # four points span a 3-dimensional affine subspace
    train, val, test = _splits(data)
    exact, short = pca(train, 3), pca(train, 1)
    normal = val.labels == 0
    scored = exact(val.x)
    assert scored.scores[normal].max() < 1e-9 and scored.scores[~normal].min() > 0.01
    terms = reconstruction_terms(val, scored)
    assert np.allclose(terms["psnr"][normal], 100.0) and np.allclose(terms["ssim"][normal], 1.0, atol=1e-4)
    assert short(val.x).scores[normal].max() > 1e-4  # one component cannot hold four patterns
    rows = run_baselines(TrainConfig(image_size=28), data, parse_methods("pca-3"), tmp_path / "b", "b")
    row = rows[0]
    assert row["test_auroc"] == 1.0 and row["val_auroc"] == 1.0
    assert row["test_f1"] == 1.0 and row["test_precision"] == 1.0 and row["test_recall"] == 1.0
    assert row["test_psnr"] < 100 and math.isfinite(row["threshold"])


def test_the_report_ranks_baselines_beside_the_deep_model_and_says_who_wins(results, tmp_path):
    sweeps = load_sweeps([results / "deep", results / "baselines"])
    trials = combine(sweeps)[0]
    metric = resolve_metric("test_auroc", trials)
    ranking = rank(trials, metric)
    assert len(ranking.boards) == 1  # one test set: the deep model and the baselines share a leaderboard
    key, board = next(iter(ranking.boards.items()))
    assert set(board["role"]) == {
        "",
        "classical: pca-8",
        "classical: pca-8-ssim",
        "classical: pca-8-mse+ssim",
        "classical: iforest-50",
        "classical: knn-3",
    }
    answer = verdict(board, key, metric)
    deep = float(board.loc[board["role"] == "", "test_auroc"].max())
    assert answer.beats_classical == (deep > max(answer.classical.values()))
    html = tmp_path / "report.html"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert report_main([str(results / "deep"), str(results / "baselines"), "--html", str(html)]) == 0
    text = out.getvalue()
    assert "classical: pca-8" in text and "classical: knn-3" in text
    assert "AUROC (95% CI)" in text and "AUPRC (95% CI)" in text and "AUROC mel" in text and "AUROC bcc" in text
    best_baseline = board[board["role"].str.startswith("classical:")].iloc[0]["model"]  # top-ranked on validation
    assert f"the best baseline ({best_baseline}): test AUROC difference" in text
    assert any(
        word in text
        for word in (" beats the best baseline", " is not distinguishable from the best baseline", " is beaten by the best baseline")
    )
    page = html.read_text(encoding="utf-8")
    flag = "No deep model beats the classical baseline(s)"
    assert (flag in page) == (not answer.beats_classical)
    assert "Paired bootstrap" in page and "95% bootstrap intervals stratified by label" in page
    csv = io.StringIO()
    with contextlib.redirect_stdout(csv):
        assert report_main([str(results / "deep"), str(results / "baselines"), "--no-html", "--format", "csv"]) == 0
    table = pd.read_csv(io.StringIO(csv.getvalue()))
    assert (table["test_auroc_low"] <= table["test_auroc"]).all() and (table["test_auroc"] <= table["test_auroc_high"]).all()


@pytest.mark.parametrize("text", ["pca-0", "svm", "knn-x", ","])
def test_bad_methods_are_user_errors(text, prepared, capsys):
    with pytest.raises(HamtuneError):
        parse_methods(text)
    assert cli_main(["baselines", str(prepared.path), "--methods", text]) == 2
    assert "hamtune: error" in capsys.readouterr().err


def test_more_components_than_training_images_is_a_user_error(prepared, tmp_path):
    with pytest.raises(HamtuneError, match="pca-5000"):
        run_baselines(TrainConfig(image_size=28), prepared, parse_methods("pca-5000"), tmp_path / "x", "x")


def test_non_learned_reconstructions_keep_flat_images_and_remove_fine_structure():
    rng = np.random.default_rng(0)
    flat = np.full((2, 16 * 16 * 3), 0.4, dtype=np.float32)
    noisy = rng.random((2, 16 * 16 * 3), dtype=np.float32)
    for scorer in (blur(flat, (16, 16, 3), sigma=2), resample(flat, (16, 16, 3), factor=4)):
        assert np.allclose(scorer(flat).reconstructions, flat, atol=1e-6) and scorer(flat).scores.max() < 1e-10
    coarse, fine = blur(noisy, (16, 16, 3), sigma=4)(noisy), blur(noisy, (16, 16, 3), sigma=1)(noisy)
    assert (coarse.scores > fine.scores).all() and coarse.reconstructions.std() < fine.reconstructions.std() < noisy.std()
    assert (resample(noisy, (16, 16, 3), 8)(noisy).scores > resample(noisy, (16, 16, 3), 2)(noisy).scores).all()


def test_every_reconstruction_is_scored_as_the_deep_models_score_it(prepared, tmp_path):
    """blur, resample and PCA write one row per score; the ssim row's test scores are 1 - SSIM of the image and its
    reconstruction (blurred copy), mse+ssim is their sum standardised on the validation normals, the setting is the
    one with the best validation AUROC."""
    rows = run_baselines(TrainConfig(image_size=28), prepared, parse_methods("blur,resample,pca-8"), tmp_path / "f", "f")
    models = [r["model"] for r in rows]
    assert models == [f"{m}{s}" for m in ("blur", "resample", "pca-8") for s in ("", "-ssim", "-mse+ssim")]
    assert [r["score"] for r in rows] == ["mse", "ssim", "mse+ssim"] * 3
    scores = load_results(tmp_path / "f")[2]
    _, val, test = _splits(prepared)
    protocol = get_protocol("cancer")
    for row in rows[:3]:
        sigma = int(row["baseline_setting"].removeprefix("sigma="))
        per_sigma = {
            s: evaluate_method(val, test, *(blur(None, val.shape, s)(x) for x in (val.x, test.x)), protocol, row["score"])[0]["val_auroc"]
            for s in BLUR_SIGMAS
        }
        assert per_sigma[sigma] == max(per_sigma.values()) == row["val_auroc"]
        recon = blur(None, test.shape, sigma)(test.x)
        terms = reconstruction_terms(test, recon)
        stored = scores[scores["trial_id"] == row["trial_id"]].set_index("image_id").loc[test.image_id]
        assert np.allclose(stored["ssim"], terms["ssim"]) and np.allclose(stored["mse"], terms["mse"])
        if row["score"] == "ssim":
            assert np.allclose(stored["score"], 1 - terms["ssim"])
        if row["score"] == "mse+ssim":
            val_terms = reconstruction_terms(val, blur(None, val.shape, sigma)(val.x))
            normal = val.labels == 0
            expected = sum(
                (v - v_val[normal].mean()) / v_val[normal].std()
                for v, v_val in ((terms["mse"], val_terms["mse"]), (1 - terms["ssim"], 1 - val_terms["ssim"]))
            )
            assert np.allclose(stored["score"], expected)
    assert {r["baseline_setting"] for r in rows[3:6]} <= {f"factor={f}" for f in RESAMPLE_FACTORS}
    assert all(r["baseline_setting"] is None and r["latent_dim"] == 8 for r in rows[6:])
    assert all(0 < r["val_ssim"] < 1 and r["val_mse"] > 0 for r in rows)
