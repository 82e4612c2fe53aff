"""Every benchmark's --quick mode runs and writes results of the documented shape (never its speed)."""

from __future__ import annotations

import contextlib
import importlib.util
import io
import json
from pathlib import Path

import numpy as np
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


def test_train_throughput_compares_notebook_loops_and_reports_flop_shares(tmp_path):
    _, result, printed = run_script("train_throughput", tmp_path)
    notebooks = ["notebook (pixel table)", "notebook (array)"]
    assert result["goal"]["ratio"] == 2.0 and result["goal"]["against"] == notebooks and result["goal"]["peak_share"] == 0.6
    assert {c["model"] for c in result["cells"]} == {"MLP-AE", "CNN-AE"}
    for cell in result["cells"]:
        loops = {"hamtune", *notebooks} | ({"hamtune (NCHW)"} if cell["model"].startswith("CNN") else set())
        assert set(cell["images_per_s"]) == loops and all(v > 0 for v in cell["images_per_s"].values())
        assert set(cell["ratios"]) == loops - {"hamtune"}
        assert all(r["min"] <= r["median"] <= r["max"] for r in cell["ratios"].values())
        assert cell["sgemm_gflops"] > 0 and cell["step_mflop_per_image"] > 0
        share = cell["peak_share"]["hamtune"]
        assert share == pytest.approx(cell["gflops"]["hamtune"] / cell["sgemm_gflops"])
    cnn = next(c for c in result["cells"] if c["model"] == "CNN-AE")
    assert 50 < cnn["step_mflop_per_image"] < 70  # 28 px CNN AE, forward + backward, counted by FlopCounterMode
    assert "of sgemm peak" in printed and result["gpu"].startswith("no GPU")


def test_step_options_time_each_layout_and_precision_against_sgemm(tmp_path):
    _, result, printed = run_script("step_options", tmp_path)
    assert [row["option"] for row in result["table"]] == ["NCHW", "channels_last", "channels_last + bf16"]
    assert all(row["img_s"] > 0 and row["vs_nchw"] > 0 for row in result["table"]) and result["sgemm_gflops"] > 0
    assert "of sgemm peak" in printed


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


def test_fused_seeds_times_fused_packed_and_sequential_seeds_alike(tmp_path):
    _, result, printed = run_script("fused_seeds", tmp_path)
    assert [(c["n"], c["mode"]) for c in result["cells"]] == [(2, "fused"), (2, "packed"), (2, "sequential")]
    by_mode = {c["mode"]: c for c in result["cells"]}
    for cell in by_mode.values():
        assert cell["wall_s"] > 0 and cell["gflops"] > 0 and cell["peak_share"] == pytest.approx(cell["gflops"] / result["sgemm_gflops"])
        assert [r["seed"] for r in cell["runs"]] == [0, 1] and all(r["status"] == "completed" for r in cell["runs"])
    for fused, alone in zip(by_mode["fused"]["runs"], by_mode["sequential"]["runs"]):  # the same seed, fused or alone
        assert fused["val_auroc"] == pytest.approx(alone["val_auroc"], abs=0.02)
    assert result["table"][0]["fused_vs_packed"] == pytest.approx(by_mode["fused"]["wall_s"] / by_mode["packed"]["wall_s"])
    assert result["target"] == {"fused_vs_packed": 0.75, "ns": [4, 8], "met": {}} and "fused/packed" in printed


def test_grouped_conv_times_each_layer_separate_and_grouped(tmp_path):
    _, result, printed = run_script("grouped_conv", tmp_path)
    assert [(r["c_in"], r["c_out"], r["stride"]) for r in result["layers"]] == [
        (3, 32, 2),
        (32, 64, 2),
        (64, 128, 2),
        (128, 64, 1),
        (64, 32, 1),
    ]
    assert all(r["separate_ms"] > 0 and r["grouped_ms"] > 0 for r in result["layers"]) and "grouped/separate" in printed


def test_cnn_step_variants_time_norms_and_group_sizes_against_sgemm(tmp_path):
    _, result, printed = run_script("cnn_step_variants", tmp_path)
    assert [(v["k"], v["norm"], v["mode"]) for v in result["variants"]] == [
        (1, "batch", "eager"),
        (1, "none", "eager"),
        (2, "batch", "eager"),
        (2, "none", "eager"),
    ]
    for v in result["variants"]:
        assert v["error"] is None and v["ms_per_step"] > 0 and v["ms_per_model_step"] == pytest.approx(v["ms_per_step"] / v["k"])
        assert v["peak_share"] == pytest.approx(v["gflops"] / result["sgemm_gflops"])
    assert result["fastest"] in result["profiles"] and "K=1 norm=batch eager" in result["profiles"]
    assert result["realistic_run"] == [] and "of sgemm peak" in printed


def test_norm_quality_pairs_the_same_seeds_with_and_without_batch_norm(tmp_path):
    _, result, printed = run_script("norm_quality", tmp_path)
    assert [p["preset"] for p in result["presets"]] == ["ham-best", "ham-best-cancer"]
    for preset in result["presets"]:
        assert [r["seed"] for r in preset["runs"]["none"]] == [r["seed"] for r in preset["runs"]["batch"]] == [0, 1]
        diff = preset["paired_none_minus_batch"]["test_auroc"]
        runs = preset["runs"]
        assert diff["mean"] == pytest.approx(np.mean([n["test_auroc"] - b["test_auroc"] for n, b in zip(runs["none"], runs["batch"])]))
        assert preset["chosen_by_val"] in ("batch", "none")
    assert "none - batch (paired)" in printed
