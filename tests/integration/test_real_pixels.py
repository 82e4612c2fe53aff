"""The whole path on REAL HAM10000 JPEGs (../shared/data/ham10000_real, the release layout with its zips):
prepare, train two models, classical baselines, an ensemble chosen on validation, and the report."""

from __future__ import annotations

import pytest
from conftest import SHARED

from hamtune.cli import main
from hamtune.results.store import load_results

REAL = SHARED / "data" / "ham10000_real"
pytestmark = [pytest.mark.slow, pytest.mark.skipif(not REAL.exists(), reason=f"{REAL} is absent (../shared is not beside this clone)")]


def test_real_jpegs_go_through_prepare_train_baselines_ensemble_and_report(tmp_path, capsys):
    assert main(["data", "prepare", str(REAL), "--size", "28", "--workers", "2"]) == 0
    assert "prepared 5984 images" in capsys.readouterr().out
    common = [
        "--data",
        str(REAL),
        "--set",
        "image_size=28",
        "--set",
        "protocol=nevus",
        "--set",
        "max_train_images=600",
        "--set",
        "epochs=2",
        "--set",
        "cnn_channels=8",
        "--results",
        str(tmp_path),
        "--name",
        "real",
    ]
    assert main(["train", *common, "--set", "score=mse+ssim"]) == 0
    assert main(["train", *common, "--set", "score=ssim", "--set", "augment=dihedral", "--set", "seed=1"]) == 0
    trials = load_results(tmp_path / "real")[0]
    assert len(trials) == 2 and set(trials["status"]) == {"completed"} and trials["test_auroc"].between(0, 1).all()
    assert (
        main(
            [
                "baselines",
                str(REAL),
                "--set",
                "image_size=28",
                "--protocol",
                "nevus",
                "--set",
                "max_train_images=600",
                "--methods",
                "pca-8",
                "--results",
                str(tmp_path),
            ]
        )
        == 0
    )
    assert main(["ensemble", str(tmp_path / "real"), "--top", "2", "--results", str(tmp_path)]) == 0
    ensemble = load_results(tmp_path / "real-ensemble")[0].iloc[0]
    assert ensemble["members"].count(",") == 1 and 0 <= ensemble["test_auroc"] <= 1
    capsys.readouterr()
    html = tmp_path / "report.html"
    assert main(["report", str(tmp_path / "real"), str(tmp_path / "real-ensemble"), str(tmp_path / "baselines"), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert "chosen on validation" in out and "classical: pca-8" in out and ensemble["trial_id"] in out
    assert html.stat().st_size > 100_000
