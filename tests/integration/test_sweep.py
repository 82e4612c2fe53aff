"""Sweeps run Ray for real (locally, small, 2 epochs) and write the documented Parquet layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import TINY_SPACE, tiny_space

from hamtune.errors import HamtuneError
from hamtune.results.store import SCHEMA_VERSION, load_results, load_samples
from hamtune.sweep.space import parse_space

pytestmark = pytest.mark.slow


def test_sweep_writes_one_row_per_trial_with_the_schema(sweep_results):
    trials, epochs, scores = load_results(sweep_results)
    assert len(trials) == 4 and trials["trial_id"].is_unique
    assert set(trials["status"]) == {"completed"}
    assert (trials["schema_version"] == SCHEMA_VERSION).all()
    for column in (
        "kind",
        "arch",
        "latent_dim",
        "lr",
        "rebalance",
        "val_auroc",
        "test_auroc",
        "test_f1",
        "test_ssim",
        "best_epoch",
        "epochs_run",
        "wall_time_s",
        "device",
        "seed",
        "hamtune_version",
        "data_fingerprint",
        "protocol",
        "test_set",
        "checkpoint",
    ):
        assert column in trials.columns, column
    assert (trials["epochs_run"] == 2).all()
    assert epochs.groupby("trial_id").size().eq(2).all()
    assert set(scores["trial_id"]) == set(trials["trial_id"])
    assert scores.groupby("trial_id").size().nunique() == 1
    for _, row in trials.iterrows():  # a row describes the model its trial delivers: the best validation epoch's
        mine = epochs[epochs["trial_id"] == row["trial_id"]]
        best = mine.loc[mine["val_auroc"].idxmax()]
        assert row["best_epoch"] == best["epoch"] and row["val_auroc"] == best["val_auroc"]
        assert row["test_auroc"] == best["test_auroc"]
    for trial_id in trials["trial_id"]:
        assert load_samples(sweep_results, trial_id)["original"].shape == (8, 28, 28, 3)


def test_conditional_parameters_are_null_where_they_do_not_apply(sweep_results):
    trials, _, _ = load_results(sweep_results)
    ae, vae = trials[trials["kind"] == "ae"], trials[trials["kind"] == "vae"]
    assert len(ae) and len(vae)
    assert ae["beta"].isna().all() and vae["beta"].notna().all()
    mlp, cnn = trials[trials["arch"] == "mlp"], trials[trials["arch"] == "cnn"]
    assert mlp["cnn_channels"].isna().all() and cnn["mlp_width"].isna().all()


def test_starting_points_are_evaluated(sweep_results):
    trials, _, _ = load_results(sweep_results)
    pairs = set(zip(trials["kind"], trials["arch"], trials["latent_dim"]))
    assert ("ae", "cnn", 16) in pairs and ("vae", "mlp", 8) in pairs


def test_study_is_persisted_for_optuna_dashboard(sweep_results):
    import optuna

    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{sweep_results / 'optuna.db'}")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4


def test_the_sweep_keeps_the_distributions_its_space_declared(sweep_results):
    from optuna.distributions import CategoricalDistribution, IntDistribution, json_to_distribution

    from hamtune.results.store import read_distributions

    declared = {k: json_to_distribution(v) for k, v in read_distributions(sweep_results).items()}
    assert declared["latent_dim"] == IntDistribution(4, 32, log=True)
    assert declared["rebalance"] == CategoricalDistribution(["none", "weighted"])
    assert set(declared) == set(TINY_SPACE["params"])


def test_multi_objective_space_runs(prepared, ray_local, tmp_path):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    space = tiny_space(
        prepared,
        tmp_path / "pareto.yaml",
        name="pareto",
        num_samples=3,
        sampler={"name": "nsga2"},
        objective=[{"metric": "val_ssim", "mode": "max"}, {"metric": "val_auroc", "mode": "max"}],
    )
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    trials, _, _ = load_results(directory)
    assert len(trials) == 3 and trials["objective_metrics"].iloc[0] == "val_ssim,val_auroc"


def test_asha_stops_weak_trials_early(prepared, ray_local, tmp_path):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    space = tiny_space(
        prepared,
        tmp_path / "asha.yaml",
        name="asha",
        num_samples=6,
        max_epochs=4,
        points_to_evaluate=[],
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 3},
        sampler={"name": "random"},
    )
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    trials, epochs, _ = load_results(directory)
    assert len(trials) == 6
    assert "stopped" in set(trials["status"]) and "completed" in set(trials["status"])
    stopped = trials[trials["status"] == "stopped"]
    assert (stopped["epochs_run"] < 4).all()
    assert set(epochs["trial_id"]) == set(trials["trial_id"])


def test_a_sweep_folder_is_not_overwritten_without_resume(sweep_results):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    space = parse_space({**TINY_SPACE, "data": "unused"}, Path("tiny.yaml"))
    with pytest.raises(HamtuneError, match="already holds a sweep; pass --resume"):
        run_sweep(space, SweepOptions(results_root=sweep_results.parent))


def test_results_are_versioned(sweep_results, tmp_path):
    import pyarrow.parquet as pq

    trials = pq.read_table(sweep_results / "trials.parquet")
    old = trials.replace_schema_metadata({b"hamtune_schema_version": b"0"})
    folder = tmp_path / "old"
    folder.mkdir()
    pq.write_table(old, folder / "trials.parquet")
    with pytest.raises(HamtuneError, match="schema version 0"):
        load_results(folder)


def test_finished_trials_keep_the_delivered_weights_not_what_only_resuming_needs(sweep_results, tmp_path):
    """--keep-checkpoints best (the default): no last-epoch weights nor optimiser state once a trial has ended,
    and what export reads is there (the export tests run on these very folders)."""
    from hamtune.train import checkpoint as ckpt

    trials = load_results(sweep_results)[0]
    for path in trials["checkpoint"]:
        folder = sweep_results / path
        assert not (folder / ckpt.TRAINER).exists() and not (folder / ckpt.WEIGHTS).exists()
        assert {ckpt.BEST, ckpt.SCORE_STATE, ckpt.CONFIG, ckpt.HISTORY} <= {p.name for p in folder.iterdir()}


@pytest.mark.parametrize(("keep", "left"), [("all", {"model.pt", "trainer.pt", "best.pt"}), ("best", {"best.pt"}), ("none", set())])
def test_keep_checkpoints_all_best_none(prepared, tmp_path, keep, left):
    from hamtune.train import checkpoint as ckpt
    from hamtune.train.config import build_config
    from hamtune.train.loop import train

    result = train(build_config({"kind": "ae", "arch": "mlp", "image_size": 28, "epochs": 2, "mlp_width": 64}), prepared)
    folder = result.run.save(tmp_path / "ckpt")
    sizes = {p.name: p.stat().st_size for p in folder.iterdir()}
    freed = ckpt.shrink(folder, keep)
    names = {p.name for p in folder.iterdir()}
    assert names & {"model.pt", "trainer.pt", "best.pt"} == left and {"config.json", "history.json"} <= names
    assert freed == sum(size for name, size in sizes.items() if name not in names)
