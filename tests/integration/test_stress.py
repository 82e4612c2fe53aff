"""`hamtune stress`: a results folder's delivered model, best deep trial and floor rows scored on their own test
split under acquisition shifts, written to stress.parquet and shown in the report."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from conftest import assert_one_line_error, run_cli

from hamtune.export.stress import BEST_DEEP, DELIVERED, FLOOR, UNSHIFTED
from hamtune.results.chosen import chosen_of
from hamtune.results.intervals import bootstrap, paired_difference
from hamtune.results.layout import STRESS
from hamtune.results.store import load_results, read_parquet

pytestmark = pytest.mark.slow

FLOORS = "pca-8,blur-2,resample-2"  # one setting each: the test needs floor rows, not a choice among settings


@pytest.fixture(scope="module")
def folder(prepared, tmp_path_factory) -> Path:
    """Two seeds of a tiny CNN AE (and their seed ensemble, the delivered model) and three floors in one folder."""
    from hamtune.cli import main

    root = tmp_path_factory.mktemp("stress")
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
                "run",
                "--seeds",
                "2",
                "--set",
                "epochs=1",
                "--set",
                "cnn_channels=8",
                "-q",
            ]
        )
        == 0
    )
    assert main(["baselines", str(prepared.path), "--methods", FLOORS, "--results", str(root), "--name", "run", "-q"]) == 0
    return root / "run"


def test_stress_writes_every_model_shift_and_strength_with_intervals(folder, capsys):
    code, out, err = run_cli(capsys, "stress", folder, "--shifts", "white_balance,hair", "--strengths", "0.5,1", "--device", "cpu")
    assert code == 0, err
    table = read_parquet(folder / STRESS)
    trials = load_results(folder)[0]
    chosen = chosen_of(folder)
    floors = trials[trials["kind"].isna() | ~trials["kind"].isin(["ae", "vae", "ensemble"])]
    assert len(floors) == 9  # three methods, each scored by mse, ssim and mse+ssim
    seeds = trials[trials["kind"] == "ae"].sort_values("val_auroc", ascending=False, kind="stable")
    best = str(seeds["trial_id"].iloc[0])  # the best single trial on validation: a part of its own unless delivered
    parts = table.drop_duplicates("trial_id").set_index("trial_id")["part"]
    assert parts[chosen.trial_id] == DELIVERED and (parts == DELIVERED).sum() == 1
    assert list(parts[parts == BEST_DEEP].index) == ([] if best == chosen.trial_id else [best])
    assert set(parts[parts == FLOOR].index) == set(floors["trial_id"])
    conditions = table[["shift", "strength"]].drop_duplicates().apply(tuple, axis=1).tolist()
    assert conditions == [(UNSHIFTED, 0.0), ("white_balance", 0.5), ("white_balance", 1.0), ("hair", 0.5), ("hair", 1.0)]
    assert len(table) == 5 * len(parts) and table.groupby("trial_id").size().eq(5).all()
    for column in ("auroc", "auroc_low", "auroc_high"):
        assert table[column].between(0, 1).all(), column
    assert (table["auroc_low"] <= table["auroc"]).all() and (table["auroc"] <= table["auroc_high"]).all()
    base, shifted = table[table["shift"] == UNSHIFTED], table[table["shift"] != UNSHIFTED]
    assert base["change"].isna().all() and shifted["change"].notna().all()
    assert (shifted["change_low"] <= shifted["change_high"]).all()
    deep = table["part"] != FLOOR
    assert table.loc[deep, "vs_floor"].notna().all() and table.loc[~deep, "vs_floor"].isna().all()
    # unshifted, every model scores exactly its row's test AUROC: the split rebuilt is its own
    recorded = trials.set_index("trial_id")["test_auroc"]
    np.testing.assert_allclose(base["auroc"], recorded.loc[base["trial_id"]].to_numpy(float), atol=1e-6)
    # the intervals are intervals.bootstrap's and paired_difference's of the same images (the stored test scores)
    _, _, stored = load_results(folder)
    mine = stored[stored["trial_id"] == chosen.trial_id]
    floor = stored[stored["trial_id"] == trials.loc[trials["model"] == base["floor"].iloc[0], "trial_id"].iloc[0]]
    delivered = base[base["part"] == DELIVERED].iloc[0]
    found = bootstrap(mine["label"].to_numpy(), mine["score"].to_numpy(float))["auroc"]
    assert (delivered["auroc"], delivered["auroc_low"], delivered["auroc_high"]) == pytest.approx((found.value, found.low, found.high))
    lead = paired_difference(mine["label"].to_numpy(), mine["score"].to_numpy(float), floor["score"].to_numpy(float))
    assert (delivered["vs_floor"], delivered["vs_floor_low"], delivered["vs_floor_high"]) == pytest.approx(
        (lead.value, lead.low, lead.high)
    )
    # the change is the shifted AUROC minus the unshifted one, per model
    unshifted = base.set_index("trial_id")["auroc"]
    np.testing.assert_allclose(shifted["change"], shifted["auroc"] - unshifted.loc[shifted["trial_id"]].to_numpy(), atol=1e-9)
    assert "delivered: " in out and "white_balance 0.5" in out and f"results: {folder / STRESS}" in out

    code, out, err = run_cli(capsys, "report", folder, "--html", folder / "report.html", "-q")
    assert code == 0, err
    page = (folder / "report.html").read_text()
    assert 'id="stress"' in page and "white_balance" in page


def test_a_seed_ensemble_is_stressed_through_its_bundle_and_scores_its_row_unshifted(folder, capsys):
    """An ensemble's folder (`hamtune ensemble`): the delivered model is the ensemble, scored as its members combine;
    no floor there, so no lead over it."""
    code, _, err = run_cli(capsys, "ensemble", folder, "--top", "20", "--results", folder.parent, "--name", "ens", "--device", "cpu")
    assert code == 0, err
    code, out, err = run_cli(capsys, "stress", folder.parent / "ens", "--shifts", "jpeg", "--strengths", "1", "--device", "cpu")
    assert code == 0, err
    table = read_parquet(folder.parent / "ens" / STRESS)
    row = load_results(folder.parent / "ens")[0].iloc[0]
    assert chosen_of(folder.parent / "ens").is_ensemble
    assert table["trial_id"].eq(row["trial_id"]).all() and table["part"].eq(DELIVERED).all()
    assert list(table["shift"]) == [UNSHIFTED, "jpeg"] and list(table["setting"]) == ["the test images as prepared", "quality 10"]
    assert table["auroc"].iloc[0] == pytest.approx(row["test_auroc"], abs=1e-6)
    assert table["vs_floor"].isna().all() and table["floor"].isna().all()


def test_a_bad_shift_or_strength_is_a_usage_error_of_one_line(folder, capsys):
    code, _, err = run_cli(capsys, "stress", folder, "--shifts", "fog")
    assert_one_line_error(code, err, "--shifts", "fog", usage=True)
    code, _, err = run_cli(capsys, "stress", folder, "--strengths", "2")
    assert_one_line_error(code, err, "--strengths", usage=True)
    assert not (folder.parent / "nothing").exists()
    code, _, err = run_cli(capsys, "stress", folder.parent / "nothing")
    assert_one_line_error(code, err, "no such results folder")
