"""`hamtune ensemble`: the best trials by validation, combined, ranked beside single models, exported and
scored exactly as its row says."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from hamtune.cli import main
from hamtune.export.bundle import META, EnsembleBundle, load_bundle
from hamtune.export.ensemble import build_ensemble
from hamtune.results.rank import top_trials
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


def test_an_ensemble_of_the_validation_best_ranks_beside_them_and_scores_as_its_row(sweep_results, prepared, tmp_path, capsys):
    assert main(["ensemble", str(sweep_results), "--top", "2", "--results", str(tmp_path), "--name", "ens"]) == 0
    out = capsys.readouterr().out
    trials, _, scores = load_results(tmp_path / "ens")
    row = trials.iloc[0]
    chosen = top_trials(sweep_results, 2)[0]
    assert row["members"] == ",".join(chosen["trial_id"]) and row["kind"] == "ensemble" and row["status"] == "completed"
    assert row["objective_metric"] == "val_auroc" and "ranked by val_auroc on validation" in out
    mine = scores[scores["trial_id"] == row["trial_id"]]
    assert row["test_auroc"] == pytest.approx(roc_auc_score(mine["label"], mine["score"]), abs=1e-12)

    bundle_dir = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "ens"), "--out", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert isinstance(bundle, EnsembleBundle) and len(bundle.members) == 2
    assert json.loads((bundle_dir / META).read_text())["threshold"] == row["threshold"]
    csv = tmp_path / "scores.csv"
    assert main(["score", str(bundle_dir), str(prepared.path), "--out", str(csv)]) == 0
    table = pd.read_csv(csv).set_index("image")
    np.testing.assert_allclose(table.loc[mine["image_id"], "score"], mine["score"], rtol=0, atol=1e-5)
    assert (table["flagged"] == (table["score"] > row["threshold"])).all()

    assert main(["report", str(sweep_results), str(tmp_path / "ens"), "--no-html"]) == 0
    report = capsys.readouterr().out
    assert row["trial_id"] in report and "chosen on validation" in report


def test_an_ensemble_needs_two_members(sweep_results, tmp_path, capsys):
    assert main(["ensemble", str(sweep_results), "--top", "1", "--results", str(tmp_path)]) == 2
    assert "at least 2" in capsys.readouterr().err


def test_train_seeds_delivers_their_ensemble_which_exports_and_scores_as_its_row(prepared, tmp_path, capsys):
    """`hamtune train --seeds 3`: three rows (seeds 0, 1, 2) and their seed ensemble's row, which export --trial writes
    as a bundle that scores the test images exactly as the row's scores say."""
    args = [
        "train",
        "--preset",
        "cnn-ae",
        "--data",
        str(prepared.path),
        "--results",
        str(tmp_path),
        "--name",
        "seeds",
        "--seeds",
        "3",
        "--set",
        "epochs=2",
        "--set",
        "cnn_channels=8",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    trials, _, scores = load_results(tmp_path / "seeds")
    seeds, ensemble = trials[trials["kind"] == "ae"], trials[trials["kind"] == "ensemble"].iloc[0]
    assert sorted(seeds["seed"]) == [0, 1, 2] and set(ensemble["members"].split(",")) == set(seeds["trial_id"])
    assert ensemble["model"] == "seed-ensemble-3" and "seed ensemble of 3 seeds (the delivered model)" in out
    mine = scores[scores["trial_id"] == ensemble["trial_id"]]
    assert ensemble["test_auroc"] == pytest.approx(roc_auc_score(mine["label"], mine["score"]), abs=1e-12)

    bundle_dir = tmp_path / "bundle"
    assert main(["export", str(tmp_path / "seeds"), "--trial", ensemble["trial_id"], "--out", str(bundle_dir)]) == 0
    bundle = load_bundle(bundle_dir)
    assert isinstance(bundle, EnsembleBundle) and sorted(m.config.seed for m in bundle.members) == [0, 1, 2]
    assert "One configuration trained on 3 seeds (0, 1, 2)" in (bundle_dir / "MODEL_CARD.md").read_text()
    csv = tmp_path / "scores.csv"
    assert main(["score", str(bundle_dir), str(prepared.path), "--out", str(csv)]) == 0
    table = pd.read_csv(csv).set_index("image")
    np.testing.assert_allclose(table.loc[mine["image_id"], "score"], mine["score"], rtol=0, atol=1e-5)
    assert (
        main(["export", str(tmp_path / "seeds"), "--trial", "nope", "--out", str(tmp_path / "b2")]) == 2
    )  # a --trial the results do not hold: usage
    assert "no ranked trial 'nope'" in capsys.readouterr().err

    best_two = seeds.sort_values("val_auroc", ascending=False, kind="stable")["trial_id"].head(2)
    _, kept = build_ensemble(tmp_path / "seeds", 0, tmp_path, "kept", "cpu", members=list(seeds["trial_id"]), keep=2)
    assert kept["model"] == "seed-ensemble-2-of-3" and kept["members"] == ",".join(best_two)  # the 2 best on validation
    assert main(["export", str(tmp_path / "kept"), "--out", str(tmp_path / "b3")]) == 0
    assert "trained on 3 seeds in `seeds`, of which the 2 best on validation" in (tmp_path / "b3" / "MODEL_CARD.md").read_text()
    assert main([*args, "--keep", "4"]) == 2 and "--keep must be a whole number between 2 and --seeds (3)" in capsys.readouterr().err
