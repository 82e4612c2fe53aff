"""What a module costs to import, checked in a fresh interpreter: the command line parses its arguments without
pandas, torch or Ray, and reading a results folder (report, methods card, chosen record) never starts the sweep
machinery (Ray, Optuna) or torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import ROOT

HEAVY = ("pandas", "pyarrow", "torch", "ray", "optuna", "sklearn", "scipy", "hamtune.sweep")


def loaded(module: str) -> set[str]:
    code = f"import json, sys, {module}; print(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True, timeout=120).stdout
    return set(json.loads(out)) & set(HEAVY)


def test_sweep_outside_the_fence_imports_without_ray():
    ray_free = sorted(
        ".".join(path.relative_to(ROOT).with_suffix("").parts)
        for path in (ROOT / "hamtune" / "sweep").rglob("*.py")
        if "tune" not in path.parts
    )
    assert "hamtune.sweep.confirm" in ray_free and "hamtune.sweep.space" in ray_free
    assert "ray" not in loaded(", ".join(ray_free))


def test_the_command_line_parses_without_pandas_torch_or_ray():
    assert loaded("hamtune.cli") <= {"hamtune.sweep"}  # the space's names for --help: plain YAML and strings


@pytest.mark.parametrize("module", ["hamtune.results.layout", "hamtune.results.records", "hamtune.gate", "hamtune.report.command"])
def test_the_names_records_and_gate_of_a_results_folder_load_nothing_heavy(module):
    assert loaded(module) == set()


@pytest.mark.parametrize(
    "module", ["hamtune.report.html", "hamtune.report.methods", "hamtune.report.tables", "hamtune.results.chosen", "hamtune.export.stress"]
)
def test_reading_results_loads_neither_the_sweep_machinery_nor_torch(module):
    assert loaded(module) <= {"pandas", "pyarrow", "scipy", "sklearn"}
