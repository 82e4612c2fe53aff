"""Faults injected for real, load, and safety: what a long sweep on a cluster must survive."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import psutil
import pytest
from conftest import ROOT, TINY_SPACE, tiny_space
from formats import write_dermamnist

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.results.store import ResultsWriter, load_results
from hamtune.train.checkpoint import delivered_weights, load_weights

pytestmark = pytest.mark.slow


@contextlib.contextmanager
def sampling(sample: Callable[[], None], every: float = 0.2) -> Iterator[None]:
    """Call `sample()` every `every` seconds on a thread while the body runs."""
    done = threading.Event()

    def loop() -> None:
        while not done.is_set():
            sample()
            time.sleep(every)

    watcher = threading.Thread(target=loop, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()


def test_diverging_and_out_of_memory_configs_end_as_rows_and_the_sweep_goes_on(prepared, ray_local, tmp_path):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    params = {
        "kind": {"choice": ["ae"]},
        "arch": {"choice": ["mlp"]},
        "lr": {"float": [1e-3, 1e6], "log": True},
        "mlp_width": {"choice": [64, 1 << 20]},
        "latent_dim": {"choice": [8, 4096]},
    }
    points = [
        {"kind": "ae", "arch": "mlp", "lr": 1e5, "mlp_width": 64, "latent_dim": 8},
        {"kind": "ae", "arch": "mlp", "lr": 1e-3, "mlp_width": 1 << 20, "latent_dim": 4096},
        {"kind": "ae", "arch": "mlp", "lr": 1e-3, "mlp_width": 64, "latent_dim": 8},
    ]
    space = tiny_space(
        prepared,
        tmp_path / "faulty.yaml",
        name="faulty",
        num_samples=3,
        params=params,
        points_to_evaluate=points,
        max_concurrent=1,
        fixed={"image_size": 28},
    )
    trials, _, _ = load_results(run_sweep(space, SweepOptions(results_root=tmp_path)))
    by_lr = {(round(row.lr), row.mlp_width): row for row in trials.itertuples()}
    diverged, oom, fine = by_lr[(100000, 64)], by_lr[(0, 1 << 20)], by_lr[(0, 64)]
    assert diverged.status == "diverged" and "training loss became nan" in diverged.reason
    assert oom.status == "failed" and "out of memory" in oom.reason and "GiB" in oom.reason
    assert fine.status == "completed" and fine.epochs_run == 2


def test_damaged_results_and_checkpoints_are_named_never_read_wrong(sweep_results, tmp_path, capsys):
    trials, _, _ = load_results(sweep_results)
    copy = tmp_path / "copy"
    copy.mkdir()
    for name in ("trials.parquet", "epochs.parquet", "scores.parquet"):
        data = (sweep_results / name).read_bytes()
        (copy / name).write_bytes(data[: len(data) // 2] if name == "epochs.parquet" else data)
    with pytest.raises(HamtuneError, match=r"epochs.parquet: unreadable or truncated Parquet file"):
        load_results(copy)
    with pytest.raises(HamtuneError, match=r"epochs.parquet: unreadable or truncated"):
        ResultsWriter(copy)
    assert main(["report", str(copy), "--no-html"]) == 1
    assert "epochs.parquet" in capsys.readouterr().err
    weights = delivered_weights(Path(trials["checkpoint"].iloc[0]))  # best.pt: a finished trial keeps the delivered weights
    truncated = tmp_path / "model.pt"
    truncated.write_bytes(weights.read_bytes()[:200])
    with pytest.raises(HamtuneError, match=r"model.pt: refused to load, not a plain weights file or truncated"):
        load_weights(truncated)


def test_sixty_four_trials_are_all_recorded_with_flat_driver_memory(prepared, ray_local, tmp_path):
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    params = {"latent_dim": {"int": [2, 8]}, "lr": {"float": [1e-3, 1e-2], "log": True}}
    space = tiny_space(
        prepared,
        tmp_path / "load.yaml",
        name="load",
        num_samples=64,
        max_epochs=1,
        params=params,
        points_to_evaluate=[],
        sampler={"name": "random"},
        resources={"cpus": 0.5},
        fixed={"image_size": 28, "kind": "ae", "arch": "mlp", "mlp_width": 16, "mlp_depth": 1, "eval_batch_size": 512},
    )
    driver, samples = psutil.Process(), []

    def sample() -> None:
        rows = len(load_results(tmp_path / "load")[0]) if (tmp_path / "load" / "trials.parquet").exists() else 0
        samples.append((rows, driver.memory_info().rss))

    with sampling(sample):
        trials, epochs, scores = load_results(run_sweep(space, SweepOptions(results_root=tmp_path)))
    samples.append((len(trials), driver.memory_info().rss))
    assert len(trials) == 64 and trials["trial_id"].is_unique and set(trials["status"]) == {"completed"}
    assert epochs["trial_id"].nunique() == 64 and scores["trial_id"].nunique() == 64
    early = [rss for rows, rss in samples if 8 <= rows <= 32]
    late = [rss for rows, rss in samples if rows >= 48]
    assert early and late
    growth = np.median(late) - np.median(early)
    assert growth < 60 * 2**20, f"driver RSS grew {growth / 2**20:.0f} MiB between trials 8-32 and 48-64"


def _trial_workers() -> list[psutil.Process]:
    out = []
    for process in psutil.process_iter(["cmdline"]):
        command = " ".join(process.info["cmdline"] or [])
        if command.startswith("ray::") and ("run_trial" in command or "ImplicitFunc" in command):
            out.append(process)
    return out


def _anonymous_rss(pid: int) -> int:
    """Resident private anonymous memory (heap copies); shared-memory pages are counted apart (RssShmem)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    return 0


def _peak_worker_memory(space, tmp_path: Path) -> int:
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    peak = [0]

    def sample() -> None:
        for worker in _trial_workers():
            try:
                peak[0] = max(peak[0], _anonymous_rss(worker.pid))
            except (OSError, psutil.Error):
                pass

    with sampling(sample):
        run_sweep(space, SweepOptions(results_root=tmp_path))
    return peak[0]


def test_concurrent_trials_share_one_copy_of_the_dataset(ray_local, tmp_path):
    """Trials read the dataset zero-copy from the object store: a trial's private (anonymous) memory
    does not grow with the dataset, so four trials on a node do not hold four copies."""
    from hamtune.data.prepare import load_prepared, prepare

    rng = np.random.default_rng(0)
    dx = np.array(["nv"] * 70 + ["mel"] * 12 + ["bkl"] * 11 + ["bcc"] * 4 + ["vasc"] * 3)
    sizes = {}
    for n in (400, 10000):
        pixels = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
        path = write_dermamnist(tmp_path / f"dermamnist_{n}.npz", pixels, list(np.resize(dx, n)))
        data = load_prepared(prepare(path, progress=False))
        # a small evaluation in both runs (48 and 100 images) and training on 300 of the images in both, so mainly the
        # dataset's size differs: a trial that copied the dataset would hold the whole 117 MiB all the same
        fraction = 0.12 if n == 400 else 0.01
        fixed = {
            "kind": "ae",
            "arch": "mlp",
            "mlp_width": 16,
            "mlp_depth": 1,
            "batch_size": 32,
            "eval_batch_size": 64,
            "val_fraction": fraction,
            "test_fraction": fraction,
            "max_train_images": 300,
        }
        space = tiny_space(
            data,
            tmp_path / f"mem{n}.yaml",
            name=f"mem{n}",
            num_samples=4,
            max_epochs=1,
            params={"latent_dim": {"choice": [4, 8]}},
            points_to_evaluate=[],
            fixed=fixed,
            resources={"cpus": 0.5},
            sampler={"name": "random"},
        )
        sizes[n] = (_peak_worker_memory(space, tmp_path), data.images.nbytes)
    (small, _), (large, dataset) = sizes[400], sizes[10000]
    assert dataset > 100 * 2**20
    # one copy adds the whole dataset (117 MiB); a torch worker's allocator alone wanders by up to ~50 MiB
    assert large - small < 0.75 * dataset, (
        f"a trial's private memory grew {(large - small) / 2**20:.0f} MiB with a {dataset / 2**20:.0f} MiB dataset"
    )


def test_the_cluster_recipe_keeps_authentication_and_nothing_disables_it():
    readme = (ROOT / "README.md").read_text()
    pointer = readme[readme.index("## Running on a Ray cluster") :]
    pointer = pointer[: pointer.index("\n## ", 3)]
    doc = (ROOT / "docs" / "cluster.md").read_text()
    recipe = doc[doc.index("## The recipe") :]
    assert "docs/cluster.md" in pointer
    assert "RAY_AUTH_MODE=token" in recipe and "--dashboard-host=127.0.0.1" in recipe
    assert recipe.index("ray get-auth-token --generate") < recipe.index("RAY_AUTH_TOKEN_PATH=")  # the token exists before it is named
    for text in (pointer, doc):
        assert "RAY_AUTH_MODE=disabled" not in text.replace("never set RAY_AUTH_MODE=disabled", "")
    for path in (ROOT / "hamtune").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"environ(\[|\.setdefault\(|\.update\().{0,3}RAY_AUTH_MODE|RAY_AUTH_MODE.{0,20}disabled", text), path
        assert "0.0.0.0" not in text, path


def test_a_local_sweep_keeps_token_authentication_and_prints_no_advice_to_disable_it(prepared, tmp_path):
    import yaml

    space = tmp_path / "auth.yaml"
    space.write_text(
        yaml.safe_dump(
            {
                **TINY_SPACE,
                "data": str(prepared.path),
                "num_samples": 1,
                "max_epochs": 1,
                "points_to_evaluate": TINY_SPACE["points_to_evaluate"][:1],
            },
            sort_keys=False,
        )
    )
    home = tmp_path / "home"  # Ray writes the token it generates for a local cluster to ~/.ray/auth_token
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH")}
    env["HOME"] = str(home)
    command = [sys.executable, "-m", "hamtune", "sweep", str(space), "--results", str(tmp_path / "results"), "--num-cpus", "1"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600, env=env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "[1/1] trial" in output
    assert "RAY_AUTH_MODE=disabled" not in output and "opt out" not in output, output
    assert (home / ".ray" / "auth_token").stat().st_size > 0  # token authentication was on: Ray made the token
