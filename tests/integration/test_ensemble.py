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
