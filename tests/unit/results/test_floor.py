"""The honest floor: a deep trial no better than a blur (or than the best classical baseline on validation) is flagged."""

from __future__ import annotations

import contextlib
import io

import pandas as pd

from hamtune import api
from hamtune.cli import main as cli_main
from hamtune.report.load import combine, load_sweeps
from hamtune.results.floor import floor_flags
from hamtune.results.rank import is_deep, objective, rank, resolve_metric

BAD = [
    "--set",
    "kind=vae",
    "--set",
    "arch=mlp",
    "--set",
    "mlp_width=64",
    "--set",
    "latent_dim=8",
    "--set",
    "epochs=1",
    "--set",
    "norm=none",
    "--set",
    "lr=200",
]


def test_a_trial_trained_at_a_huge_learning_rate_is_flagged_below_the_blur(prepared, tmp_path):
    with contextlib.redirect_stdout(io.StringIO()):
        assert cli_main(["train", "--data", str(prepared.path), *BAD, "--results", str(tmp_path), "--name", "bad"]) == 0
        assert cli_main(["baselines", str(prepared.path), "--methods", "blur-4,pca-8", "--results", str(tmp_path)]) == 0
    trials = combine(load_sweeps([tmp_path / "bad", tmp_path / "baselines"]))[0]
    board = next(iter(rank(trials, resolve_metric("test_auroc", trials), objective(trials)).boards.values()))
    bad = board[board["role"] == ""].iloc[0]
    assert bad["status"] == "completed"  # it finished: only the floor says it learned nothing
    assert "reconstructs no better than blur-4-" in bad["floor"] and "val_mse" in bad["floor"]
    assert "does not beat" in bad["floor"]
    assert board.loc[board["role"] != "", "floor"].isna().all()  # baselines are the floor, never below it
    assert api.rank(tmp_path / "bad")["floor"].isna().all()  # no baselines on the board: nothing to compare with


def _board(**deep) -> pd.DataFrame:
    rows = [
        {
            "trial_id": "blur",
            "role": "classical: blur-ssim",
            "model": "blur-ssim",
            "baseline": "blur",
            "baseline_setting": "sigma=4",
            "val_auroc": 0.80,
            "val_mse": 0.002,
            "val_ssim": 0.80,
        },
        {
            "trial_id": "pca",
            "role": "classical: pca-64",
            "model": "pca-64",
            "baseline": "pca",
            "val_auroc": 0.78,
            "val_mse": 0.001,
            "val_ssim": 0.82,
        },
        {"trial_id": "deep", "role": "", "val_auroc": 0.85, "val_mse": 0.001, "val_ssim": 0.70, **deep},
    ]
    return pd.DataFrame(rows).sort_values("val_auroc", ascending=False, ignore_index=True)


def test_the_flag_needs_no_better_reconstruction_on_both_measures_or_no_better_objective():
    def flag(**deep):
        board = _board(**deep)
        return floor_flags(board, is_deep(board), "val_auroc", True)[board["trial_id"] == "deep"].iloc[0]

    assert flag() is None  # lower MSE than the blur: a better reconstruction by one measure is enough
    assert flag(val_mse=0.003, val_ssim=0.90) is None
    assert flag(val_mse=0.003).startswith("reconstructs no better than blur-ssim (sigma=4")
    assert flag(val_auroc=0.79) == "val_auroc 0.79 does not beat blur-ssim (0.8)"
    assert flag(val_mse=None, val_ssim=None) is None  # unknown reconstruction (old rows, ensembles): no flag
    board = _board(val_auroc=0.79).assign(test_auroc=0.5)
    assert floor_flags(board, is_deep(board), "test_auroc", True).isna().all()  # an optimistic ranking: no objective check
