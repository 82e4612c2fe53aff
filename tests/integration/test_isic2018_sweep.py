"""The ISIC 2018 search space sweeps for real on synthetic stand-ins of the ISIC 2018 layout."""

from __future__ import annotations

import numpy as np
import pytest
from conftest import ROOT

from hamtune.results.store import load_results


@pytest.mark.slow
def test_isic2018_space_sweeps_on_synthetic_stand_ins(ray_local, tmp_path, isic_dir):
    from hamtune.sweep.space import load_space
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    root = ROOT / "search_spaces" / "isic2018.yaml"
    overrides = {
        "num_samples": 2,
        "max_epochs": 1,
        "image_size": 24,
        "data": str(isic_dir),
        "test_data": str(isic_dir),
        "scheduler": "none",
    }
    directory = run_sweep(load_space(root, overrides), SweepOptions(results_root=tmp_path))
    trials, _, _ = load_results(directory)
    assert len(trials) == 2 and (trials["protocol"] == "nevus").all()
    assert trials["test_auroc_mel"].notna().all()
    assert np.all(trials["test_set"].str.startswith("isic2018-"))
