"""Writing files and folders so that a crash never leaves half of one: build aside, then rename."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


def _aside(path: Path) -> Path:
    return path.parent / f".{path.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it replaces `out` in one rename."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = _aside(out)
    tmp.mkdir()
    try:
        yield tmp
        if out.exists():
            shutil.rmtree(out)
        os.rename(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


@contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success it replaces `out` (os.replace is atomic)."""
    out = Path(out)
    tmp = _aside(out)
    tmp = tmp.with_name(tmp.name + out.suffix)  # keep the suffix writers look at (np.savez adds .npz otherwise)
    try:
        yield tmp
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles), or {} when there is none."""
    path = Path(path)
    if not path.exists():
        return {}
    with np.load(path, allow_pickle=False) as archive:
        return {key: archive[key] for key in archive.files}
