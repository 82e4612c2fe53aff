"""The Python API, used as a notebook would: train, load results, rank, report, export, score; and a sweep's
results read back through Ray Tune's own ResultGrid."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import warnings

import numpy as np
import pytest
from conftest import ROOT, TINY_SPACE

pytestmark = pytest.mark.slow


def test_import_hamtune_is_cheap_and_lists_the_api():
    code = (
        "import sys, hamtune; heavy = [m for m in ('torch', 'ray', 'pandas', 'optuna') if m in sys.modules]; "
        "print(heavy, sorted(set(hamtune.API) <= set(dir(hamtune)) for _ in [0]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert done.stdout.strip() == "[] [True]", done.stdout + done.stderr


def test_a_notebook_trains_loads_ranks_reports_exports_and_scores(prepared, tmp_path):
    import hamtune
    import hamtune.export.bundle
    import hamtune.train.loop  # a notebook may have imported the subpackages: the API's names still hold

    folder = hamtune.train_model(
        data=str(prepared.path),
        results=tmp_path / "results",
        name="notebook",
        progress=False,
        kind="ae",
        arch="mlp",
        epochs=2,
        image_size=28,
        mlp_width=64,
        latent_dim=8,
    )
    assert folder == tmp_path / "results" / "notebook"
    trials, epochs, scores = hamtune.load_results(folder)
    assert len(trials) == 1 and trials["status"].iloc[0] == "completed" and len(epochs) == 2

    board = hamtune.rank(folder)
    assert list(board["rank"]) == [1] and board["trial_id"].iloc[0] == trials["trial_id"].iloc[0]
    assert hamtune.rank(trials, metric="test_auprc")["test_auprc"].iloc[0] == trials["test_auprc"].iloc[0]

    html = hamtune.write_report(folder, html=tmp_path / "report.html")
    assert html.exists() and "Which model is best and why" in html.read_text()

    bundle = hamtune.export_model(folder, tmp_path / "model", formats=("torch", "torch-export"))
    assert (bundle / "model.pt").exists() and (bundle / "model.pt2").exists()
    table = hamtune.score(bundle, prepared.path).set_index("image")
    mine = scores.set_index("image_id")
    np.testing.assert_allclose(table.loc[mine.index, "score"], mine["score"], rtol=0, atol=1e-5)  # the trial's own test scores
    program = hamtune.score(bundle, prepared.path, format="torch-export").set_index("image")
    np.testing.assert_allclose(program["score"], table["score"], rtol=1e-5, atol=1e-7)

    with pytest.raises(hamtune.HamtuneError, match="name at least one image"):
        hamtune.score(bundle)


def test_a_sweeps_results_load_through_tunes_own_result_grid(sweep_results, ray_local):
    from ray import tune

    import hamtune
    from hamtune.sweep.tune.trainable import run_trial

    grid = tune.Tuner.restore(str(sweep_results / "tune"), trainable=run_trial).get_results()
    trials = hamtune.load_results(sweep_results)[0]
    assert len(grid) == len(trials) and not grid.errors
    frame = grid.get_dataframe()
    assert set(frame["trial_id"]) == set(trials["trial_id"])
    last = frame.set_index("trial_id")["best_val_auroc"]  # Tune's view of each trial's delivered model
    np.testing.assert_allclose(last.loc[trials["trial_id"]], trials["val_auroc"], rtol=0, atol=0)


def test_as_a_library_hamtune_prints_nothing(prepared, tmp_path, capsys):
    """Only the CLI configures logging and prints: a notebook's cell stays empty (tqdm bars too, off a terminal)."""
    import hamtune

    capsys.readouterr()
    folder = hamtune.train_model(
        data=str(prepared.path), results=tmp_path, name="quiet", kind="ae", arch="mlp", epochs=1, image_size=28, mlp_width=32, latent_dim=8
    )
    hamtune.write_report(folder, html=tmp_path / "report.html")
    assert capsys.readouterr() == ("", "")


def test_a_sweep_leaves_the_environment_loggers_and_warning_filters_as_it_found_them(prepared, tmp_path, capsys, ray_local):
    import optuna  # noqa: F401  (imported first: what an import itself sets is the library's doing, not hamtune's;
    import tensorboardX  # noqa: F401  Tune's default logger imports tensorboardX, which sets CRC32C_SW_MODE)
    from ray import tune  # noqa: F401

    import hamtune

    quieted = ("ray.tune", "optuna", "hamtune")
    user_set = "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S"
    os.environ[user_set] = "30"  # a value the user set survives, and one hamtune sets goes away again
    os.environ.pop("TUNE_GLOBAL_CHECKPOINT_S", None)
    environment, levels, filters = dict(os.environ), {n: logging.getLogger(n).level for n in quieted}, list(warnings.filters)
    try:
        capsys.readouterr()
        hamtune.run_sweep({**TINY_SPACE, "data": str(prepared.path)}, results=tmp_path, num_samples=1, max_epochs=1)
        assert capsys.readouterr().out == ""
        assert dict(os.environ) == environment
        assert {n: logging.getLogger(n).level for n in quieted} == levels and warnings.filters == filters
    finally:
        os.environ.pop(user_set, None)


def test_the_demo_runs_the_sweep_pipeline_so_a_confirm_stage_delivers_its_seed_ensemble(prepared, tmp_path, ray_local):
    """`demo` goes through run_sweep: the confirmed configuration's seed ensemble is built, chosen.json names it,
    and the demo's leaderboard, Results.best and the export default agree."""
    import yaml

    import hamtune
    from hamtune.results.chosen import read_chosen

    space = tmp_path / "demo.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                **TINY_SPACE,
                "data": str(prepared.path),
                "num_samples": 1,
                "max_epochs": 1,
                "points_to_evaluate": [TINY_SPACE["points_to_evaluate"][0]],
                "confirm": {"top": 1, "seeds": 1},
            },
            sort_keys=False,
        )
    )
    demo = hamtune.run_demo(space=space, name="demo", results=tmp_path / "results", num_cpus=2)
    trials = hamtune.load_results(demo.directory)[0]
    chosen = read_chosen(demo.directory)
    assert chosen is not None and chosen.kind == "ensemble" and len(chosen.members) == 2
    assert set(chosen.members) == set(trials.loc[trials["kind"] == "ae", "trial_id"])
    best = hamtune.open_results(demo.directory).best
    assert best.trial_id == chosen.trial_id and best.config["latent_dim"] == 16 and type(best.config["latent_dim"]) is int
    assert hamtune.rank(demo.directory)["trial_id"].iloc[0] == chosen.trial_id and chosen.trial_id in demo.leaderboards
    exported = hamtune.export_trial(demo.directory, tmp_path / "model")
    assert exported.row["trial_id"] == chosen.trial_id
