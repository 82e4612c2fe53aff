"""The package as a user installs it: a wheel built from the project (no download: no dependencies, no build
isolation), installed into a folder of its own and run from elsewhere, so the source tree is not on the path.
It must carry its search spaces (package data) for `hamtune demo` and bare names such as `quick`."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

pytestmark = pytest.mark.slow


def _run(args: list[str], cwd: Path, site: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site)}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_an_installed_wheel_ships_its_search_spaces_and_runs_the_demos_first_step(tmp_path):
    source = tmp_path / "src"  # a copy: building in place would leave build/ and egg-info in the worktree
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(ROOT / "hamtune", source / "hamtune", ignore=shutil.ignore_patterns("__pycache__"))
    built = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "-q",
            "-w",
            str(tmp_path / "dist"),
            str(source),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    wheel = next((tmp_path / "dist").glob("hamtune-*.whl"))
    spaces = sorted(p.name for p in (ROOT / "hamtune" / "search_spaces").glob("*.yaml"))
    with zipfile.ZipFile(wheel) as archive:
        shipped = sorted(Path(n).name for n in archive.namelist() if n.startswith("hamtune/search_spaces/"))
    assert "quick.yaml" in spaces and shipped == spaces

    site, elsewhere = tmp_path / "site", tmp_path / "elsewhere"
    elsewhere.mkdir()
    installed = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "--no-index", "-q", "--target", str(site), str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert installed.returncode == 0, installed.stdout + installed.stderr

    helped = _run([sys.executable, "-m", "hamtune", "demo", "--help"], elsewhere, site)
    assert helped.returncode == 0 and "--space" in helped.stdout, helped.stdout + helped.stderr
    first_step = (  # what `hamtune demo` does before its sweep: read the default space; and a bare name as `sweep` does
        "import hamtune, hamtune.cli as cli; from pathlib import Path; from hamtune.sweep.space import load_space; "
        "args = cli.build_parser().parse_args(['demo']); space = load_space(args.space); "
        "print(hamtune.__file__); print(args.space); print(space.name, space.data, space.num_samples); "
        "print(load_space(Path('quick')).path)"
    )
    done = _run([sys.executable, "-c", first_step], elsewhere, site)
    assert done.returncode == 0, done.stdout + done.stderr
    module, default, summary, bare = done.stdout.strip().splitlines()
    assert Path(module).is_relative_to(site) and Path(default).is_relative_to(site) and Path(bare).is_relative_to(site)
    assert summary == "quick synthetic 16"
    data = _run(
        [sys.executable, "-m", "hamtune", "data", "synth", "synthetic", "--n", "14", "--image-size", "32x24", "--workers", "1"],
        elsewhere,
        site,
    )
    assert data.returncode == 0 and "synthetic HAM-like dataset (14 images, 32x24)" in data.stdout, data.stdout + data.stderr
    assert not any(elsewhere.glob("**/*.py"))  # nothing of the source tree was needed here
