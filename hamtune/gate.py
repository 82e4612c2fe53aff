"""The one gate every path hamtune writes goes through, from the command line and the API alike.

A writer names its target, what it reads and what kind of thing it writes; the gate refuses, before any work, a
target that would destroy data:
- the target is, or is inside, or is a folder above, anything the command reads (a source dataset, an input
  image or folder, the bundle or results folder it reads from);
- it is inside an exported bundle (sealed by its digests), a prepared cache, or a results folder the writer is
  not writing;
- it is the working directory, the home folder, or a folder above either (replacing those deletes where a user
  stands);
- it is a symbolic link (the gate resolves links: a link to any of the above is refused as that);
- it exists and is not what this writer makes (its own recogniser says so): replaced by nothing, even with
  --force; a folder of its own kind is added to, replaced, or replaced only with --force, as the writer says.
Replacement itself is atomic (files.atomic_folder / atomic_file). Errors are UsageError (exit 2), one line, naming
the flag. The list of writers and the dangerous targets are a contract test (tests/unit/test_gate.py).
"""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from hamtune.errors import UsageError
from hamtune.results.layout import RESULTS_FILES, RESULTS_SUBFOLDERS

MARK = ".hamtune"  # the marker of a folder hamtune made that has no recognisable file of its own (maps)
Existing = Literal["add", "replace", "force"]  # what a writer does to a target of its own kind that exists
MAX_PEEK = 1 << 16


def _json(path: Path) -> dict | None:
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode) or info.st_size > MAX_PEEK:
            return None
        with open(path, "rb") as handle:
            data = json.loads(handle.read(MAX_PEEK))
    except (OSError, ValueError, UnicodeDecodeError):
        return None
    return data if isinstance(data, dict) else None


def _head(path: Path, size: int = 256) -> bytes:
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b""
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return b""


def is_bundle(folder: Path) -> bool:
    """An exported model: bundle.json naming a bundle version."""
    return "bundle_version" in (_json(Path(folder) / "bundle.json") or {})


def is_cache(folder: Path) -> bool:
    """A prepared dataset cache: its manifest names the source signature."""
    return "signature" in (_json(Path(folder) / "manifest.json") or {})


def is_synthetic(folder: Path) -> bool:
    """A dataset `hamtune data synth` wrote (its marker file)."""
    return _json(Path(folder) / ".hamtune-synth.json") is not None


def is_results(folder: Path) -> bool:
    """A results folder (a sweep's, a run's, baselines') or Tune's experiment folder inside a storage path."""
    try:
        names = set(os.listdir(folder))
    except OSError:
        return False
    if names & set(RESULTS_FILES) or any(n.startswith("experiment_state-") for n in names):
        return True
    visible = {n for n in names if not n.startswith(".")}  # a run's own temporaries are hidden (files.atomic_file)
    return ".lock" in names and visible <= set(RESULTS_SUBFOLDERS)  # a run that holds its lock, no rows yet


def is_marked(folder: Path) -> bool:
    return os.path.isfile(Path(folder) / MARK)


def is_report(path: Path) -> bool:
    return _head(path).startswith(b'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hamtune report')


def is_scores_csv(path: Path) -> bool:
    return _head(path, 64).startswith(b"image,score")


def mark(folder: Path) -> None:
    """Mark a folder as hamtune's (for kinds without a file of their own), so a later run may add to it."""
    (Path(folder) / MARK).write_text("written by hamtune\n")


# Folders whose inside no writer may touch unless it is writing that very folder.
SEALED: tuple[tuple[str, Callable[[Path], bool]], ...] = (
    ("an exported bundle", is_bundle),
    ("a prepared cache", is_cache),
    ("a results folder", is_results),
)


@dataclass(frozen=True)
class Target:
    """What a writer is about to write: `path` (as given), `real` (links resolved), whether it exists yet."""

    path: Path
    real: Path
    exists: bool


def _real(path: Path) -> Path:
    return Path(os.path.realpath(os.path.abspath(path)))


def _within(inner: Path, outer: Path) -> bool:
    return inner == outer or outer in inner.parents


def _refuse(flag: str, path: Path, why: str) -> UsageError:
    return UsageError(f"{flag} {path}: {why}; choose another {flag} (nothing was written or replaced)")


def output(
    path: str | Path,
    *,
    flag: str,
    kind: Literal["file", "folder"],
    own: Callable[[Path], bool],
    existing: Existing,
    reads: Iterable[str | Path] = (),
    writes_in: str | Path | None = None,
    force: bool = False,
    force_flag: str = "--force",
) -> Target:
    """Check `path` as the target of one writer and return it; refuse (UsageError) anything that would destroy data.

    `own` recognises a target of this writer's kind; `existing` says what happens to one: "add" (written into),
    "replace" (replaced), "force" (replaced only with `force`). `writes_in` is a results folder this writer owns
    (a report's own report.html lies inside it)."""
    given = Path(path)
    real = _real(given)
    if os.path.islink(given):
        raise _refuse(flag, given, f"a symbolic link (to {real}); give the {kind} itself")
    if os.path.lexists(real) and real.is_dir() != (kind == "folder"):
        raise _refuse(flag, given, "is a folder; give the file to write" if kind == "file" else "is a file, not a folder")
    owner = _real(Path(writes_in)) if writes_in is not None else None
    for source in reads:
        source_real = _real(Path(source))
        if owner is not None and source_real == owner and real != owner:
            continue  # a report's own page inside the results folder it reads
        if _within(real, source_real):
            where = "is" if real == source_real else "is inside"
            raise _refuse(flag, given, f"{where} {source}, which this command reads")
        if _within(source_real, real):
            raise _refuse(flag, given, f"is a folder above {source}, which this command reads")
    home, here = _real(Path.home()), _real(Path.cwd())
    if real == Path(real.anchor) or _within(home, real):
        raise _refuse(flag, given, "the home folder or a folder above it")
    if _within(here, real):
        raise _refuse(flag, given, "the working directory or a folder above it")
    for folder in real.parents:
        if owner is not None and folder == owner:
            break
        for what, recognise in SEALED:
            if recognise(folder):
                raise _refuse(flag, given, f"is inside {what} ({folder}), which it would break")
    exists = os.path.lexists(real)
    if exists:
        _check_existing(given, real, flag, kind, own, existing, force, force_flag)
    _check_writable(given, real, flag)
    return Target(given, real, exists)


def _check_existing(
    given: Path, real: Path, flag: str, kind: str, own: Callable[[Path], bool], existing: Existing, force: bool, force_flag: str
) -> None:
    if kind == "folder" and not any(real.iterdir()):
        return
    if not own(real):
        raise _refuse(
            flag, given, f"exists and is not a {kind} this command writes; hamtune never replaces what it did not make, {force_flag} or not"
        )
    if existing == "force" and not force:
        raise UsageError(
            f"{flag} {given} exists (written by hamtune earlier); pass {force_flag} to replace it, or choose "
            f"another {flag} (nothing was replaced)"
        )


def _check_writable(given: Path, real: Path, flag: str) -> None:
    """The nearest existing folder must take new files: found now, not after the training."""
    probe = real if real.is_dir() else real.parent
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        raise _refuse(flag, given, f"{probe} is a file, so no folder can be made there")
    if not os.access(probe, os.W_OK | os.X_OK):
        raise _refuse(flag, given, f"{probe} is not writable")
