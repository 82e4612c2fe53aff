"""The statistics of a reproduction: spread of the new seeds and the verdict."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hamtune.results.reproduction import spread, summarise


def test_spread_and_verdict():
    mean, std, low, high, lo, hi = spread(np.array([0.60, 0.62, 0.64]))
    assert mean == pytest.approx(0.62) and std == pytest.approx(0.02)
    assert low == pytest.approx(0.62 - 4.302653 * 0.02 / np.sqrt(3), abs=1e-6) and lo == low and hi == high
    frame = pd.DataFrame(
        {
            "config_id": ["a"] * 4,
            "seed": [0, 1, 2, 3],
            "is_original": [True, False, False, False],
            "test_auroc": [0.9, 0.60, 0.62, 0.64],
            "val_auroc": [0.5, 0.60, 0.62, 0.64],
        }
    )
    chosen = pd.DataFrame({"trial_id": ["a"], "test_auroc": [0.9], "val_auroc": [0.61]})
    verdicts = summarise(frame, chosen, ("test_auroc", "val_auroc")).set_index("metric")["verdict"]
    assert verdicts.to_dict() == {"test_auroc": "does not hold", "val_auroc": "holds"}


def test_runs_that_all_failed_summarise_to_one_line():
    from hamtune.results.rank import Metric
    from hamtune.results.reproduction import format_summary

    frame = pd.DataFrame({"config_id": ["a"] * 2, "seed": [0, 1], "is_original": [True, False], "status": ["failed"] * 2})
    chosen = pd.DataFrame({"trial_id": ["a"], "test_auroc": [0.9], "rank": [1]})
    summary = summarise(frame, chosen, ("test_auroc",))
    assert format_summary(summary, chosen, Metric("val_auroc", True)).startswith("no reproduction run finished with metrics")
