"""The Optuna study in results/<name>/optuna.db says what trials.parquet says, trial by trial."""

from __future__ import annotations

import math

import pytest
from conftest import tiny_space

from hamtune.results.store import load_results

pytestmark = pytest.mark.slow

STATES = {"completed": "COMPLETE", "stopped": "PRUNED", "diverged": "FAIL", "failed": "FAIL"}


def delivered_so_far(values) -> dict[int, float]:
    best, curve = None, {}
    for epoch, value in values:
        if math.isfinite(value) and (best is None or value > best):
            best = value
        if best is not None:
            curve[int(epoch)] = best
    return curve


def test_the_optuna_study_mirrors_trials_parquet_trial_by_trial(prepared, ray_local, tmp_path):
    import optuna

    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    base = {"kind": "ae", "arch": "mlp", "rebalance": "none"}
    points = [{**base, "latent_dim": 8, "lr": 1e5}] + [
        {**base, "latent_dim": d, "lr": lr} for d, lr in ((4, 1e-3), (8, 2e-3), (16, 3e-3), (32, 1e-3), (4, 3e-3))
    ]
    space = tiny_space(
        prepared,
        tmp_path / "mirror.yaml",
        name="mirror",
        num_samples=7,
        max_epochs=4,
        points_to_evaluate=points,
        params={
            "kind": {"choice": ["ae"]},
            "arch": {"choice": ["mlp"]},
            "latent_dim": {"int": [4, 32], "log": True},
            "lr": {"choice": [1e-3, 2e-3, 3e-3, 1e5]},
            "rebalance": {"choice": ["none"]},
        },
        scheduler={"name": "asha", "grace_period": 1, "reduction_factor": 3},
        sampler={"name": "random"},
        max_concurrent=1,  # ASHA's outcome depends on the order results arrive; one at a time fixes it
    )
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    trials, epochs, _ = load_results(directory)
    assert {"completed", "stopped", "diverged"} <= set(trials["status"])

    study = optuna.load_study(study_name="mirror", storage=f"sqlite:///{directory / 'optuna.db'}")
    by_id = {t.user_attrs.get("trial_id"): t for t in study.trials}
    assert len(study.trials) == len(trials) and set(by_id) == set(trials["trial_id"])
    for _, row in trials.iterrows():
        mirror = by_id[row["trial_id"]]
        assert mirror.state.name == STATES[row["status"]], row["trial_id"]
        assert mirror.user_attrs["status"] == row["status"]
        assert mirror.user_attrs["results_path"] == str(directory)
        assert mirror.params == {k: row[k] for k in ("kind", "arch", "latent_dim", "lr", "rebalance")}
        mine = epochs[epochs["trial_id"] == row["trial_id"]].sort_values("epoch")
        assert mirror.intermediate_values == delivered_so_far(zip(mine["epoch"], mine["val_auroc"]))
        if row["status"] in ("completed", "stopped"):
            assert mirror.value == row["val_auroc"]  # the delivered model's value, also for a pruned trial
            assert mirror.last_step == row["epochs_run"]
        else:
            assert mirror.value is None
