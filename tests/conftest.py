"""Shared fixtures: a private cache folder, small datasets in the real formats, and ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REAL_METADATA = SHARED / "data" / "HAM10000_metadata.csv"
REAL_SAMPLE = SHARED / "data" / "ham10000_sample"


# The modules that take longest on CI's 2 cores (docs/measurements.md), handed out first: `-n 2 --dist loadscope
# --no-loadscope-reorder` gives whole modules to the workers in collection order, and xdist's own order (most tests
# first) started these few-test modules last, so a 10-minute module ran alone on one core while the other idled.
LONGEST_FIRST = (
    "test_sweep_faults.py",
    "test_cluster.py",
    "test_reliability.py",
    "test_benchmarks.py",
    "test_hostile.py",
    "test_api.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: index for index, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.fixture(scope="session", autouse=True)
def hamtune_cache(tmp_path_factory) -> Path:
    """Every test writes caches under a temp folder, never under the user's home."""
    path = tmp_path_factory.mktemp("hamtune-cache")
    os.environ["HAMTUNE_CACHE"] = str(path)
    return path


@pytest.fixture(scope="session", autouse=True)
def hamtune_config(tmp_path_factory) -> Path:
    """hamtune's per-user records (the digests of Tune state a sweep wrote) go to a temp folder too."""
    path = tmp_path_factory.mktemp("config")
    os.environ["XDG_CONFIG_HOME"] = str(path)
    return path


@pytest.fixture(scope="session")
def release_dir(tmp_path_factory) -> Path:
    """A small synthetic dataset in the original release's layout (metadata CSV + part_1/part_2 JPEGs)."""
    from hamtune.data.synth import synthesize_release

    return synthesize_release(tmp_path_factory.mktemp("release") / "ham", n=400, seed=1, image_size=(160, 120), progress=False)


@pytest.fixture(scope="session")
def prepared(release_dir):
    """That dataset prepared at 28 px: the input of model, training and sweep tests."""
    from hamtune.data.prepare import load_prepared, prepare

    return load_prepared(prepare(release_dir, size=28, progress=False))


@pytest.fixture(scope="session")
def isic_dir(tmp_path_factory) -> Path:
    """The ISIC 2018 layout with 600x450 JPEGs: training = HAM10000 (with its metadata), plus a test set."""
    from hamtune.data.synth import synthesize_isic2018

    return synthesize_isic2018(tmp_path_factory.mktemp("isic") / "isic", n_train=300, n_test=150, seed=0, progress=False)


def needs_shared(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is not beside this clone)")


TINY_SPACE = {
    "name": "tiny",
    "objective": {"metric": "val_auroc", "mode": "max"},
    "sampler": {"name": "tpe", "n_startup_trials": 2},
    "scheduler": "none",
    "num_samples": 4,
    "max_epochs": 2,
    "floor": False,  # these tests count a sweep's trials; the floor rows it adds by default: tests/integration/test_floor.py
    "resources": {"cpus": 1},
    "fixed": {"image_size": 28, "batch_size": 64, "cnn_channels": 8, "mlp_width": 64},
    "params": {
        "kind": {"choice": ["ae", "vae"]},
        "arch": {"choice": ["mlp", "cnn"]},
        "latent_dim": {"int": [4, 32], "log": True},
        "lr": {"float": [1e-3, 5e-3], "log": True},
        "rebalance": {"choice": ["none", "weighted"]},
        "beta": {"float": [0.1, 1.0], "when": {"kind": "vae"}},
    },
    "points_to_evaluate": [
        {"kind": "ae", "arch": "cnn", "latent_dim": 16, "lr": 2e-3, "rebalance": "none"},
        {"kind": "vae", "arch": "mlp", "latent_dim": 8, "lr": 2e-3, "rebalance": "weighted", "beta": 0.5},
    ],
}


@pytest.fixture(scope="session")
def ray_local():
    """One local Ray for the whole session (starting Ray costs seconds); shut down at the end."""
    import ray

    from hamtune.sweep.tune.runner import start_ray

    start_ray(None, num_cpus=2)
    yield
    ray.shutdown()


def tiny_space(prepared, path: Path, **changes):
    from hamtune.sweep.space import parse_space

    raw = {**TINY_SPACE, "data": str(prepared.path), **changes}
    return parse_space(raw, path)


@pytest.fixture(scope="session")
def sweep_results(tmp_path_factory, prepared, ray_local) -> Path:
    """A real, tiny sweep (4 trials x 2 epochs at 28 px) written in the results layout."""
    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    root = tmp_path_factory.mktemp("results")
    return run_sweep(tiny_space(prepared, root / "tiny.yaml"), SweepOptions(results_root=root))


@pytest.fixture(scope="module")
def trained(prepared, tmp_path_factory) -> Path:
    """A results folder written by `hamtune train` (one MLP AE, one epoch, 28 px); one per module, as modules
    that attack it may leave it changed."""
    from hamtune.cli import main

    root = tmp_path_factory.mktemp("trained")
    argv = ["train", "--data", str(prepared.path), "--set", "epochs=1", "--set", "image_size=28", "--set", "mlp_width=32"]
    assert main([*argv, "--name", "x", "--results", str(root)]) == 0
    return root / "x"


def run_cli(capsys, *argv) -> tuple[int, str, str]:
    """Run `hamtune ARGV` in this process; returns the exit code, stdout and stderr."""
    from hamtune.cli import main

    capsys.readouterr()
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str, usage: bool = False) -> None:
    """A failure while working (exit 1) or, with `usage`, a bad argument (exit 2): no traceback, the last line
    `hamtune: error: ...` naming each needle."""
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert code == (2 if usage else 1), err
    assert lines and lines[-1].startswith("hamtune: error: "), err
    assert "Traceback" not in err, err
    for needle in needles:
        assert needle in lines[-1], lines[-1]
