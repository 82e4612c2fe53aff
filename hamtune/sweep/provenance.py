"""What a paper's methods section needs to know about a sweep, written beside its results (`sweep.json`).

The results rows say what each trial was; this record says how the sweep was run: the space as validated
(sampler, scheduler, budget, confirm stage, fixed values, parameters), the command that reproduces it, the
software and the hardware, and when it started and ended. `hamtune report --format methods` reads it.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shlex
import time
from dataclasses import asdict
from importlib import metadata
from pathlib import Path

import yaml

import hamtune
from hamtune.errors import HamtuneError
from hamtune.files import atomic_file
from hamtune.results.layout import RECORD
from hamtune.results.records import read_record
from hamtune.results.store import git_commit
from hamtune.sweep.space import SearchSpace

log = logging.getLogger(__name__)
PACKAGES = ("torch", "ray", "optuna", "numpy", "pandas", "scikit-learn", "pillow", "pyarrow")


def versions() -> dict[str, str]:
    """hamtune, Python and the packages whose versions change results."""
    found = {"hamtune": hamtune.__version__, "python": platform.python_version()}
    for name in PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return found


def hardware(cluster: dict | None = None) -> dict:
    """This machine, and the Ray cluster's CPUs and GPUs the trials ran on."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    found: dict[str, object] = {
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
        "gpu": gpu,
    }
    if cluster:
        found["cluster"] = {k: cluster[k] for k in ("CPU", "GPU") if k in cluster}
    return found


def space_settings(space: SearchSpace, num_samples: int) -> dict:
    """The validated space as plain data (the parameters as declared, conditions included)."""
    return {
        "file": str(space.path),
        "name": space.name,
        "data": space.data,
        "test_data": space.test_data,
        "objectives": [list(o) for o in space.objectives],
        "sampler": space.sampler,
        "scheduler": space.scheduler,
        "num_samples": num_samples,
        "max_epochs": space.max_epochs,
        "max_concurrent": space.max_concurrent,
        "max_failures": space.max_failures,
        "resources": space.resources,
        "fixed": space.fixed,
        "params": [{k: v for k, v in asdict(p).items() if v not in ((), None, {})} for p in space.params],
        "points_to_evaluate": list(space.points),
        "confirm": {"top": space.confirm_top, "seeds": space.confirm_seeds, **({"keep": space.confirm_keep} if space.confirm_keep else {})},
        "floor": space.floor,
    }


def _set_value(value) -> str:
    """A --set value as the command line takes it back: text as given, anything else as JSON (which YAML reads)."""
    return value if isinstance(value, str) else json.dumps(value, default=str)


def sweep_command(space: SearchSpace, name: str, num_samples: int, data: str, options=None) -> str:
    """The command that runs this sweep again: the space file with every option and override as given (`options`:
    the runner's SweepOptions; its `overrides` are the --set values, the confirm stage and the floor setting)."""
    words = ["hamtune", "sweep", str(space.path), "--name", name, "--data", data, "--num-samples", str(num_samples)]
    if space.test_data:
        words += ["--test-data", space.test_data]
    if options is None:
        return shlex.join(words)
    if Path(options.results_root) != Path("results"):
        words += ["--results", str(options.results_root)]
    for key, value in (options.overrides or {}).items():
        if value is None or key in ("data", "test_data", "num_samples", "name"):
            continue
        if key == "confirm" and isinstance(value, dict) and set(value) <= {"top", "seeds"}:
            words += ["--confirm-top", str(space.confirm_top), "--confirm-seeds", str(space.confirm_seeds)]
        elif key == "floor" and value in (False, "false", "False"):
            words.append("--no-floor")
        elif key != "floor":
            words += ["--set", f"{key}={_set_value(value)}"]
    for tracker in options.log_to:
        words += ["--log-to", tracker]
    for flag, value in (
        ("--address", options.address),
        ("--gpus-per-trial", options.gpus_per_trial),
        ("--num-cpus", options.num_cpus),
        ("--storage", options.storage),
    ):
        if value is not None:
            words += [flag, f"{value:g}" if isinstance(value, float) else str(value)]
    if options.keep_checkpoints != "best":
        words += ["--keep-checkpoints", options.keep_checkpoints]
    return shlex.join(words)


def start(
    directory: Path, space: SearchSpace, name: str, num_samples: int, data_manifest: dict, cluster: dict | None, options=None
) -> None:
    """Write the record as the sweep starts (a resumed sweep keeps the one it has); `cwd` is what the command's
    relative paths are relative to."""
    path = Path(directory) / RECORD
    if path.exists():
        return
    settings = space_settings(space, num_samples)
    text = space.path.read_text() if space.path.is_file() else yaml.safe_dump(settings, sort_keys=False)  # an API dict's space
    record = {
        "sweep": name,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "finished_at": None,
        "wall_time_s": None,
        "space": settings,
        "space_text": text,
        "data": data_manifest,
        "command": sweep_command(space, name, num_samples, space.data, options),
        "cwd": os.getcwd(),
        "versions": versions(),
        "git_commit": git_commit(),
        "hardware": hardware(cluster),
    }
    _write(path, record)


def finish(directory: Path, wall_time_s: float) -> None:
    """Add when the sweep ended and how long this run of it took (resumed runs add up)."""
    path = Path(directory) / RECORD
    try:
        record = read_record(directory)
    except HamtuneError as exc:  # the trials are recorded; a broken record is not worth failing the sweep at its end
        log.warning("%s; its finish time was not added", exc)
        return
    if record is None:
        return
    record["finished_at"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    record["wall_time_s"] = float(record.get("wall_time_s") or 0.0) + wall_time_s
    _write(path, record)


def _write(path: Path, record: dict) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(record, indent=1, default=str))
