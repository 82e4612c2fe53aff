"""Where results go, safely: names that stay one folder under the results root, one writer per folder,
and paths stored relative to the results folder so a copied folder reads its own files."""

from __future__ import annotations

import errno
import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from hamtune.errors import HamtuneError

LOCK = ".lock"


def safe_name(name: str, what: str = "--name") -> str:
    """A results name must be one plain path component: no separator, no '..', not absolute, not hidden."""
    text = str(name)
    if (
        not text.strip() or text in (".", "..") or text.startswith(".") or "/" in text or "\\" in text
        or any(not c.isprintable() for c in text) or PurePosixPath(text).is_absolute() or PureWindowsPath(text).drive
    ):
        raise HamtuneError(f"{what} {text!r}: a results name is one folder name (letters, digits, - _ .), "
                           "without '/', '..' or a leading '.'")
    return text


def results_folder(root: Path, name: str, what: str = "--name") -> Path:
    """root/name, with `name` checked to be a single safe component."""
    return Path(root) / safe_name(name, what)


@contextmanager
def results_lock(directory: Path) -> Iterator[None]:
    """Hold the results folder for this process: a second writer gets an error naming the holder.

    flock is released by the kernel when the holder dies (SIGKILL included), so a lock left by a dead
    process is simply taken over; the PID in the file only serves the message.
    """
    directory = Path(directory)
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle = open(directory / LOCK, "a+")  # noqa: SIM115 (held open as the lock until the with-block ends)
    except (FileExistsError, NotADirectoryError):
        raise HamtuneError(f"{directory}: cannot hold results, it or a folder above it is a file; "
                           "choose another --results or --name") from None
    except OSError as exc:
        raise HamtuneError(f"{directory}: cannot write results there ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                raise
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise HamtuneError(f"{directory} is in use by another hamtune (PID {holder}); wait for it to finish "
                               "or choose another --name") from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            if created and {p.name for p in directory.iterdir()} == {LOCK}:  # a run that failed before writing
                (directory / LOCK).unlink()  # leaves no folder holding only its lock
                directory.rmdir()
    finally:
        handle.close()


def relative_to_results(path: str | Path | None, directory: Path) -> str | None:
    """How a results row names a file: relative to the results folder when inside it (so a copied or moved
    folder, read from any working directory, finds its own files), else as given."""
    if path is None:
        return None
    absolute, root = os.path.realpath(os.path.abspath(path)), os.path.realpath(directory)
    if os.path.commonpath([absolute, root]) == root:
        return Path(os.path.relpath(absolute, root)).as_posix()
    return str(path)


def in_results(path, directory: Path):
    """A stored path read back: a relative one is under `directory`; absolute ones and non-paths stay."""
    if not isinstance(path, str) or not path or Path(path).is_absolute():
        return path
    return str(Path(directory) / path)
