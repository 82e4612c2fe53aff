"""The tracker registry as a contract: every name `--log-to` accepts has a backend, and every backend has what a
sweep asks of it (its package and install, a trial tracker, a way to name the chosen model). A new tracker is
tested by being added; tests/integration/test_trackers.py runs the three for real."""

from __future__ import annotations

import inspect
import re

import pytest
from conftest import ROOT

from hamtune.sweep.space import TRACKERS
from hamtune.sweep.trackers import BACKENDS, TrialTracker


def test_every_tracker_name_has_one_backend():
    assert sorted(BACKENDS) == sorted(TRACKERS)


@pytest.mark.parametrize("name", TRACKERS)
def test_each_backend_logs_trials_and_names_the_chosen_model(name):
    backend = BACKENDS[name]
    assert issubclass(backend.tracker, TrialTracker)
    for event in ("start_trial", "log_epoch", "end_trial"):
        assert getattr(backend.tracker, event) is not getattr(TrialTracker, event), f"{name} does not implement {event}"
    assert list(inspect.signature(backend.tracker).parameters) == ["directory", "sweep", "manifest", "sampled", "settings"]
    assert list(inspect.signature(backend.delivered).parameters) == ["directory", "sweep", "chosen"]


@pytest.mark.parametrize("name", TRACKERS)
def test_each_backends_install_brings_its_package(name):
    backend = BACKENDS[name]
    if backend.extra.startswith("hamtune["):
        tomllib = pytest.importorskip("tomllib")  # Python 3.11+
        extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
        extra = backend.extra.removeprefix("hamtune[").removesuffix("]")
        brought = [re.split(r"[\s<>=!~;\[]", requirement)[0] for requirement in extras[extra]]
        assert backend.module in brought, (extra, brought)
    else:
        assert backend.extra == backend.module  # a plain package of that name
