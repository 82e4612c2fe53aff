"""The leaderboard's best is the trial a user without test labels would choose: ranked on validation,
reported on test, with the optimism of choosing on test stated beside it."""

from __future__ import annotations

import pandas as pd

from hamtune.report.tables import optimism_line, text_report
from hamtune.results.rank import Metric, objective, rank, verdict


def trials() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "sweep": "s",
            "trial_id": ["a", "b", "c", "pca"],
            "status": "completed",
            "kind": ["ae", "ae", "vae", None],
            "model": [None, None, None, "pca-64"],
            "val_auroc": [0.80, 0.85, 0.70, 0.78],
            "test_auroc": [0.90, 0.82, 0.95, 0.80],
            "objective_metric": "val_auroc",
            "objective_mode": "max",
        }
    )


def test_the_board_is_ordered_on_validation_and_reports_test():
    frame = trials()
    ranking = rank(frame, Metric("test_auroc", True), objective(frame))
    board = next(iter(ranking.boards.values()))
    assert list(board["trial_id"]) == ["b", "a", "pca", "c"] and not ranking.optimistic
    found = verdict(board, "k", ranking.metric)
    assert found.best["trial_id"] == "b" and found.best_on_metric["trial_id"] == "c"
    assert found.classical == {"classical: pca-64": 0.80} and found.beats_classical is True
    line = optimism_line(board, ranking)
    assert "Chosen on validation: b" in line and "0.95" in line and "+0.13" in line
    text = text_report(ranking, ("kind",), 10, "table")
    assert "chosen on validation" in text and "val_auroc (ranks)" in text


def test_ranking_on_a_test_column_is_labelled_optimistic():
    frame = trials()
    ranking = rank(frame, Metric("test_auroc", True))
    assert ranking.optimistic and "optimistic" in ranking.label
    assert next(iter(ranking.boards.values()))["trial_id"].iloc[0] == "c"
    assert optimism_line(next(iter(ranking.boards.values())), ranking) == ""
