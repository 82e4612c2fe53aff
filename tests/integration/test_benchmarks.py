"""Every benchmark's --quick mode runs and writes results of the documented shape (never its speed)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import pytest
import torch
from conftest import ROOT

MACHINE_KEYS = {"cpu", "cores", "usable_cores", "torch", "device", "device_name", "gpu_available"}

pytestmark = pytest.mark.slow


def run_script(name: str, out: Path, *extra: str) -> tuple[dict, dict, str]:
    """main(['--quick', '--out', out]) of benchmarks/<name>.py in this process (Ray, when needed, is the session's)."""
    spec = importlib.util.spec_from_file_location(f"bench_{name}", ROOT / "benchmarks" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed):
            payload = module.main(["--quick", "--out", str(out), *extra])
    finally:
        torch.set_num_threads(threads)
    written = json.loads((out / f"{name}.json").read_text())
    assert written["benchmark"] == name and written["quick"] is True
    assert MACHINE_KEYS <= set(written["machine"]) and written["machine"]["cores"] >= 1
    assert written["load_start"]["uptime"] and len(written["load_end"]["loadavg"]) == 3
    assert written["command"].startswith(f"python benchmarks/{name}.py")
    return payload, written, printed.getvalue()


def test_train_throughput_compares_both_notebook_loops_with_hamtune(tmp_path):
    _, result, printed = run_script("train_throughput", tmp_path)
    alternatives = {"notebook (pixel table)", "notebook (array)", "hamtune"}
    assert result["cells"] and result["goal"] == {"ratio": 2.0, "batch": 32, "against": sorted(alternatives - {"hamtune"}, reverse=True)}
    written = "notebook (pixel table, default AdamW)"
    assert result["as_written"]["name"] == written
    for cell in result["cells"]:
        assert set(cell["images_per_s"]) == alternatives | {written} and all(v > 0 for v in cell["images_per_s"].values())
        assert set(cell["ratios"]) == alternatives - {"hamtune"} | {written}
        assert all(r["min"] <= r["median"] <= r["max"] for r in cell["ratios"].values())
        assert cell["train_images"] > 0 and cell["batch"] == 32
        if not all(cell["goal_met"].values()):
            assert cell["gap"] and cell["profile"]["hamtune_top_ops"] and cell["profile"]["data_path_alone_s"]["hamtune"] > 0
    assert "x vs table" in printed and result["gpu"].startswith("no GPU")


def test_prepare_speed_times_naive_hamtune_and_cached_runs(tmp_path):
    _, result, printed = run_script("prepare_speed", tmp_path)
    assert set(result["seconds"]) == {"naive", "hamtune, 1 worker", "hamtune", "cached re-run"}
    assert set(result["ratios"]) == {"hamtune, 1 worker", "hamtune", "cached re-run"}
    assert result["images"] == 40 and result["source_size"] == [600, 450] and result["size"] == 64
    assert result["hamtune_prepare_s"] > 0 and result["goal"]["ratio"] == 4.0
    assert result["mean_abs_difference_vs_naive"] < 3  # draft-mode decoding gives (nearly) the same pixels
    if not result["goal"]["met"]:
        assert result["gap"] and result["profile"]["decoding_s"] > 0
    assert "x vs naive" in printed


def test_sweep_overhead_measures_ray_against_bare_calls(tmp_path, ray_local):
    _, result, printed = run_script("sweep_overhead", tmp_path)
    assert set(result["seconds"]) == {"bare", "bare + checkpoints", "sweep, 1 at a time", "sweep, packed"}
    summary = result["summary"]
    assert summary["ray_startup_s"] is None  # the session's Ray was already running
    assert {"overhead_per_trial_s", "checkpointing_per_trial_s", "outside_trials_per_trial_s"} <= set(summary)
    assert all(row["trials_per_hour"] > 0 for row in result["table"])
    if not torch.cuda.is_available():
        assert "no CUDA GPU" in result["gpu"]["skipped"] and "no CUDA GPU" in printed


def test_search_efficiency_reads_curves_from_the_sweeps_results(tmp_path, ray_local):
    _, result, _ = run_script("search_efficiency", tmp_path)
    assert [row["method"] for row in result["table"]] == ["random, no early stopping", "TPE + ASHA"]
    assert result["budget_epochs"] == 4 and 0 < result["target"] <= result["best_val_auroc_found"] <= 1
    for run in result["runs"]:
        epochs, best = run["curve"]["epochs"], [b for b in run["curve"]["best_val_auroc"] if b is not None]
        assert epochs == sorted(epochs) and best == sorted(best)
    random_run = next(r for r in result["runs"] if r["method"].startswith("random"))
    assert random_run["curve"]["epochs"][-1] == result["budget_epochs"]  # no early stopping: every trial runs max_epochs
    html = (tmp_path / result["figure"]).read_text()
    assert "plotly" in html.lower() and "best val AUROC" in html
