"""`hamtune reproduce` retrains a real sweep's best config on Ray: the original seed gives the original numbers."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest
from formats import copy_results

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.results.layout import REPRODUCE
from hamtune.results.rank import top_trials
from hamtune.results.store import load_results, read_parquet, write_parquet
from hamtune.sweep.tune.reproduce import ReproduceOptions, run_reproduce

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reproduced(sweep_results, tmp_path_factory):
    """A copy of the tiny sweep's results (its checkpoints stay where the sweep wrote them) to reproduce."""
    return copy_results(sweep_results, tmp_path_factory.mktemp("reproduce") / "tiny")


def test_original_seed_gives_the_original_metrics_exactly(reproduced, capsys):
    assert main(["reproduce", str(reproduced), "--top", "1", "--seeds", "2"]) == 0
    out = capsys.readouterr().out
    trials = load_results(reproduced)[0]
    best = top_trials(reproduced, 1)[0].iloc[0]
    assert best["val_auroc"] == trials["val_auroc"].max()

    runs = read_parquet(reproduced / REPRODUCE)
    assert list(runs["seed"]) == [best["seed"], best["seed"] + 1, best["seed"] + 2]
    assert set(runs["config_id"]) == {best["trial_id"]} and runs["is_original"].tolist() == [True, False, False]
    assert set(runs["status"]) == {"completed"} and (runs["epochs_run"] == best["epochs_run"]).all()
    for column in ("test_auroc", "test_auprc", "test_f1", "test_ssim", "test_psnr", "test_mse", "val_auroc", "wall_time_s"):
        assert pd.api.types.is_float_dtype(runs[column]), column
    original = runs[runs["is_original"]].iloc[0]
    for column in ("test_auroc", "val_auroc", "test_mse", "test_ssim", "threshold"):
        assert original[column] == best[column], column
    assert not (runs.loc[~runs["is_original"], "test_mse"] == best["test_mse"]).any()  # new seeds really differ

    assert "holds / does not hold:" in out and str(best["trial_id"]) in out
    line = next(text for text in out.splitlines() if text.strip().startswith("test_auroc"))
    assert f"= {best['test_auroc']:.4g}" in line and line.rstrip().endswith(("holds", "does not hold"))

    from hamtune.report.html import reproduction_summary
    from hamtune.report.load import load_sweep

    summary = reproduction_summary([load_sweep(reproduced)])
    # the HTML summarises the new seeds only, as the terminal does (it used to average the original's rerun in: [3])
    assert summary["seeds"].tolist() == [2] and "test_auroc mean" in summary and "is_original mean" not in summary


def _fail(argv: list[str], capsys) -> str:
    assert main(argv) == 1
    return capsys.readouterr().err


def test_changed_fingerprint_is_refused_naming_both(sweep_results, prepared, tmp_path, capsys):
    moved = tmp_path / "moved-cache"
    shutil.copytree(prepared.path, moved)
    manifest = json.loads((moved / "manifest.json").read_text())
    manifest["fingerprint"] = "0" * 32
    (moved / "manifest.json").write_text(json.dumps(manifest))
    err = _fail(["reproduce", str(sweep_results), "--data", str(moved), "--seeds", "0"], capsys)
    assert prepared.fingerprint in err and "0" * 32 in err and str(moved) in err and "same data" in err


def test_another_cache_is_refused(sweep_results, release_dir, tmp_path):
    from hamtune.data.prepare import load_prepared, prepare

    other = load_prepared(prepare(release_dir, size=16, out=tmp_path / "other", progress=False))
    with pytest.raises(HamtuneError, match=other.fingerprint):
        run_reproduce(sweep_results, ReproduceOptions(top=1, seeds=0, data=other.path))


def test_missing_data_is_refused(sweep_results, prepared, tmp_path, capsys):
    directory = copy_results(sweep_results, tmp_path / "tiny")
    trials = read_parquet(directory / "trials.parquet")
    write_parquet(trials.assign(data_path=str(tmp_path / "gone")), directory / "trials.parquet")
    err = _fail(["reproduce", str(directory), "--top", "1"], capsys)
    assert "missing" in err and str(tmp_path / "gone") in err and prepared.fingerprint in err
    assert not (directory / REPRODUCE).exists()
