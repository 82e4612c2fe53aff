"""The JSON records of a results folder a reader needs without the sweep machinery: `sweep.json` (how the sweep
was run) and `confirm.json` (its confirm stage's plan), each checked field by field when read, so a broken one is
one line naming it. The sweep writes them (sweep/provenance.py, sweep/confirm.py); the report, the methods card
and `--resume` read them here."""

from __future__ import annotations

from pathlib import Path

from hamtune.errors import HamtuneError
from hamtune.files import read_json_record
from hamtune.results.layout import PLAN, RECORD

FieldTypes = dict[str, type | tuple[type, ...]]
RECORD_FIELDS: FieldTypes = {
    "sweep": str,
    "started_at": str,
    "finished_at": str,
    "wall_time_s": (int, float),
    "space": dict,
    "space_text": str,
    "data": dict,
    "command": str,
    "versions": dict,
    "git_commit": str,
    "hardware": dict,
}
SPACE_FIELDS = {"file": str, "objectives": list, "sampler": dict, "scheduler": dict, "resources": dict, "fixed": dict, "params": list}
PLAN_FIELDS: FieldTypes = {
    "metric": str,
    "mode": str,
    "top": int,
    "seeds": int,
    "configurations": dict,
    "trials": int,
    "tune_trials": int,
    "fuse": str,
    "not_fused": dict,
}


def read_record(directory: Path) -> dict | None:
    """sweep.json (None when there is none), its fields and the space's checked: a broken one is one line naming it."""
    path = Path(directory) / RECORD
    record = read_json_record(path, RECORD_FIELDS)
    space = (record or {}).get("space") or {}
    for key, kind in SPACE_FIELDS.items():
        if space.get(key) is not None and not isinstance(space[key], kind):
            raise HamtuneError(f"{path}: field 'space.{key}' must be {kind.__name__}; restore it or delete it")
    if not all(isinstance(p, dict) and isinstance(p.get("name"), str) for p in space.get("params") or []) or not all(
        isinstance(o, list) and len(o) == 2 for o in space.get("objectives") or []
    ):
        raise HamtuneError(f"{path}: field 'space.params' or 'space.objectives' is not as hamtune writes it; restore it or delete it")
    return record


def read_plan(directory: Path) -> dict | None:
    """confirm.json (None without a confirm stage), its fields checked: a broken one is one line naming it."""
    plan = read_json_record(Path(directory) / PLAN, PLAN_FIELDS)
    missing = [key for key in ("metric", "top", "seeds", "trials") if plan is not None and not isinstance(plan.get(key), PLAN_FIELDS[key])]
    if missing:
        raise HamtuneError(f"{Path(directory) / PLAN}: field {missing[0]!r} is missing; restore it or delete it")
    return plan
