"""Worker processes that die with the process that started them, and temporaries a dead process left.

A decoding pool's workers block writing results to their parent; a parent killed by SIGKILL never
reads them, so they would wait forever (reparented to PID 1). Each worker asks the kernel for
SIGKILL when its parent dies (Linux PR_SET_PDEATHSIG); elsewhere a thread polls the parent's PID.
"""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

PR_SET_PDEATHSIG = 1
TEMPORARY = re.compile(r"^\..+\.tmp-(\d+)-[0-9a-f]{8}(\.\w+)?$")  # hamtune.files._aside names


def _watch_parent(parent: int) -> None:
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def die_with_parent(parent: int) -> None:
    """Pool initializer: end this worker when `parent` (the pool's creator) dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) != 0:
                raise OSError(ctypes.get_errno(), "prctl")
        except (OSError, AttributeError):
            threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    else:
        threading.Thread(target=_watch_parent, args=(parent,), daemon=True).start()
    if os.getppid() != parent:  # died before the request took effect
        os._exit(1)


def capped(workers: int, jobs: int) -> int:
    """Worker processes worth starting: never more than the jobs or the cores (`--workers 1000000` forks no more)."""
    return max(1, min(int(workers), int(jobs), os.cpu_count() or 1))


def pool(workers: int, jobs: int | None = None) -> ProcessPoolExecutor:
    """A process pool whose workers die with this process, capped by the work and the cores."""
    size = capped(workers, workers if jobs is None else jobs)
    return ProcessPoolExecutor(max_workers=size, initializer=die_with_parent, initargs=(os.getpid(),))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temporaries(folder: Path) -> list[Path]:
    """Delete the temporary files and folders (`.NAME.tmp-PID-XXXXXXXX`) in `folder` whose writing process
    is dead; a live PID's temporary is left alone. Returns what was removed."""
    removed: list[Path] = []
    try:
        entries = list(Path(folder).iterdir())
    except OSError:
        return removed
    for entry in entries:
        match = TEMPORARY.match(entry.name)
        if not match or int(match.group(1)) == os.getpid() or _alive(int(match.group(1))):
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)
        removed.append(entry)
    return removed
