"""Shared fixtures: a private cache folder, small datasets in the real formats, and ../shared when present."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
REAL_METADATA = SHARED / "data" / "HAM10000_metadata.csv"
REAL_SAMPLE = SHARED / "data" / "ham10000_sample"


def pytest_configure(config) -> None:
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "1")


@pytest.fixture(scope="session", autouse=True)
def hamtune_cache(tmp_path_factory) -> Path:
    """Every test writes caches under a temp folder, never under the user's home."""
    path = tmp_path_factory.mktemp("hamtune-cache")
    os.environ["HAMTUNE_CACHE"] = str(path)
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


def needs_shared(path: Path):
    return pytest.mark.skipif(not path.exists(), reason=f"{path} is absent (../shared is not beside this clone)")
