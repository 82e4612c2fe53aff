"""Where results go, safely: names that stay one folder under the results root, one writer per folder,
and paths stored relative to the results folder so a copied folder reads its own files."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path, PurePosixPath, PureWindowsPath

from filelock import FileLock, Timeout

from hamtune.errors import HamtuneError, UsageError
from hamtune.gate import is_results, output

LOCK = ".lock"


MAX_NAME_BYTES = 200  # a results name; trial ids add about 25 characters and a file system's names end at 255 bytes


def safe_name(name: str, what: str = "--name") -> str:
    """A results name must be one plain path component: no separator, no '..', not absolute, not hidden."""
    text = str(name)
    if (
        not text.strip()
        or text in (".", "..")
        or text.startswith(".")
        or "/" in text
        or "\\" in text
        or any(not c.isprintable() for c in text)
        or PurePosixPath(text).is_absolute()
        or PureWindowsPath(text).drive
    ):
        error = UsageError if what.startswith("--") else HamtuneError  # a flag's value, or a file's `name:`
        raise error(f"{what} {text!r}: a results name is one folder name (letters, digits, - _ .), without '/', '..' or a leading '.'")
    if len(text.encode("utf-8")) > MAX_NAME_BYTES:
        error = UsageError if what.startswith("--") else HamtuneError
        raise error(
            f"{what} {text[:40]!r}...: {len(text.encode('utf-8'))} bytes long; a results name holds at most "
            f"{MAX_NAME_BYTES} (trial ids and file names are built from it, and a file name holds 255)"
        )
    return text


def results_folder(root: Path, name: str, what: str = "--name") -> Path:
    """root/name, with `name` checked to be a single safe component."""
    return Path(root) / safe_name(name, what)


def _write_pid(fd: int) -> None:
    """Called by filelock on the locked descriptor: the holder's PID, for the message a second writer gets."""
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, str(os.getpid()).encode())


def _holder(path: Path) -> str:
    try:
        return path.read_text().strip() or "unknown"
    except OSError:  # Windows locks the file's first byte against readers
        return "unknown"


@contextmanager
def results_lock(directory: Path, flag: str = "results folder") -> Iterator[None]:
    """Hold the results folder for this process: a second writer gets an error naming the holder. The folder goes
    through the output gate first: a user's folder, a bundle or another results folder's inside never holds results.

    The lock (filelock: flock on Unix, msvcrt on Windows) is released by the system when the holder
    dies (SIGKILL included), so a lock left by a dead process is simply taken over; the PID in the
    file only serves the message.
    """
    directory = Path(directory)
    output(directory, flag=flag, kind="folder", own=is_results, existing="add")
    created = not directory.exists()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise HamtuneError(
            f"{directory}: cannot hold results, it or a folder above it is a file; choose another --results or --name"
        ) from None
    except OSError as exc:
        raise HamtuneError(f"{directory}: cannot write results there ({exc.strerror})") from None
    lock = FileLock(directory / LOCK, timeout=0, preserve_lock_file=True, on_acquired=_write_pid)
    try:
        lock.acquire()
    except Timeout:
        raise HamtuneError(
            f"{directory} is in use by another hamtune (PID {_holder(directory / LOCK)}); wait for it to finish or choose another --name"
        ) from None
    except OSError as exc:
        raise HamtuneError(f"{directory}: cannot write results there ({exc.strerror})") from None
    try:
        yield
    finally:
        lock.release(force=True)
        if created and {p.name for p in directory.iterdir()} == {LOCK}:  # a run that failed before writing
            (directory / LOCK).unlink()  # leaves no folder holding only its lock
            directory.rmdir()


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
