"""Writing files and folders so that a crash never leaves half of one (build aside, then rename), and reading
the small files a results folder or bundle holds without trusting them to be small or even files."""

from __future__ import annotations

import errno
import os
import shutil
import signal
import stat
import threading
import uuid
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np

from hamtune.errors import HamtuneError, first_line

MAX_TEXT_BYTES = 64 << 20  # a JSON or CSV hamtune reads from a results folder or bundle (bundle.json is a few kB)
MAX_SOURCE_BYTES = 4 << 30  # a dataset file (a zip of JPEGs, an .npz of arrays, a pixel table)
MAX_IMAGE_BYTES = 256 << 20  # one encoded image (a 600x450 JPEG is ~250 kB; a 16-bit 4k TIFF ~100 MB)
TMP, OLD = ".tmp-", ".old-"


_interrupt = {"asked": False, "holding": 0}


def on_interrupt(signum: int, frame) -> None:
    """The CLI's SIGINT handler: Ctrl-C is remembered (so one that a library swallows still stops the command before
    anything is put in place) and raised as KeyboardInterrupt, except inside `uninterrupted()`, which raises it after."""
    _interrupt["asked"] = True
    if not _interrupt["holding"]:
        raise KeyboardInterrupt


@contextmanager
def interrupt_handling() -> Iterator[None]:
    """on_interrupt as SIGINT's handler while a command runs (not where the shell made us ignore Ctrl-C, nor outside
    the main thread); the earlier handler afterwards."""
    _interrupt["asked"] = False
    earlier = signal.getsignal(signal.SIGINT)
    mine = earlier is signal.default_int_handler and threading.current_thread() is threading.main_thread()
    if mine:
        signal.signal(signal.SIGINT, on_interrupt)
    try:
        yield
    finally:
        if mine:
            signal.signal(signal.SIGINT, earlier)


def check_interrupted() -> None:
    """Raise KeyboardInterrupt if Ctrl-C came (even if something swallowed it): nothing half-done is put in place."""
    if _interrupt["asked"]:
        raise KeyboardInterrupt


@contextmanager
def uninterrupted() -> Iterator[None]:
    """Ctrl-C inside is held until the block ends: a swap of two folders is never left halfway."""
    _interrupt["holding"] += 1
    try:
        yield
    finally:
        _interrupt["holding"] -= 1
    check_interrupted()


def _aside(path: Path, what: str = TMP) -> Path:
    return path.parent / f".{path.name}{what}{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        pass
    return True


def _dead(path: Path, prefix: str) -> bool:
    pid = path.name[len(prefix) :].split("-", 1)[0]
    return pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid))


def remove_dead_leftovers(out: Path) -> None:
    """Clean up after a process killed mid-write (SIGKILL) whose PID is gone: its temporary siblings of `out`
    are removed, and an earlier `out` it had renamed aside to swap is put back if nothing took its place."""
    out = Path(out)
    for path in out.parent.glob(f".{out.name}{OLD}*"):
        if _dead(path, f".{out.name}{OLD}") and not os.path.lexists(out):
            os.rename(path, out)
    for path in out.parent.glob(f".{out.name}{TMP}*"):
        if _dead(path, f".{out.name}{TMP}"):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


@contextmanager
def atomic_folder(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it takes `out`'s place.

    A new `out` is created by one rename that fails if another process created it meanwhile (never
    silently replaced); an existing one is swapped: renamed aside, the new one renamed in, and only
    then the old one deleted, so a failure at any step leaves one of the two whole in place.
    """
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    remove_dead_leftovers(out)
    replacing = not _vacant(out)  # decided now: a folder that appears meanwhile is another writer's, never replaced
    tmp = _aside(out)
    tmp.mkdir()
    try:
        yield tmp
        _move_in(tmp, out, replacing)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _vacant(out: Path) -> bool:
    return not os.path.lexists(out) or (out.is_dir() and not out.is_symlink() and not any(out.iterdir()))


def _move_in(tmp: Path, out: Path, replacing: bool) -> None:
    check_interrupted()
    with uninterrupted():
        _swap(tmp, out, replacing)


def _swap(tmp: Path, out: Path, replacing: bool) -> None:
    if not replacing or _vacant(out):
        try:
            os.rename(tmp, out)  # replaces at most an empty folder; a non-empty one fails
        except OSError as exc:
            if exc.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise HamtuneError(
                    f"{out}: another process wrote it while this one ran; nothing was replaced, choose another --out or run again"
                ) from None
            raise
        return
    old = _aside(out, OLD)
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException as exc:
        os.rename(old, out)  # put the original back: nothing lost
        if isinstance(exc, OSError):
            raise HamtuneError(
                f"{out}: could not put the new version in place ({exc.strerror or exc}); the earlier one was kept as it was"
            ) from None
        raise
    shutil.rmtree(old, ignore_errors=True)


@contextmanager
def atomic_file(out: Path) -> Iterator[Path]:
    """Yield a temporary sibling path to write; on success it replaces `out` (os.replace is atomic)."""
    out = Path(out)
    tmp = _aside(out)
    tmp = tmp.with_name(tmp.name + out.suffix)  # keep the suffix writers look at (np.savez adds .npz otherwise)
    try:
        yield tmp
        check_interrupted()
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)


def check_regular(path: Path, limit: int | None = MAX_TEXT_BYTES, links: bool = True) -> os.stat_result:
    """The file's stat, once it is known to be a regular file (not a device, FIFO or folder: /dev/zero would
    never end) no larger than `limit`; `links=False` also refuses a symbolic link. FileNotFoundError passes."""
    path = Path(path)
    info = os.lstat(path) if not links else os.stat(path)
    if stat.S_ISLNK(info.st_mode):
        raise HamtuneError(f"{path}: a symbolic link; hamtune never writes one there, so it was refused")
    if not stat.S_ISREG(info.st_mode):
        raise HamtuneError(f"{path}: not a regular file (a device, FIFO, socket or folder); refused")
    if limit is not None and info.st_size > limit:
        raise HamtuneError(f"{path}: {info.st_size} bytes, more than the {limit} such a file may hold; refused")
    return info


def read_text(path: Path, limit: int = MAX_TEXT_BYTES, links: bool = True) -> str:
    """A small text file's content, read only after check_regular (so never unbounded)."""
    check_regular(path, limit, links)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise HamtuneError(f"{path}: more than the {limit} bytes such a file may hold; refused")
    return data.decode("utf-8")


def read_input(path: Path, limit: int = MAX_TEXT_BYTES) -> bytes:
    """The bytes of one input file, read only after check_regular (no device, FIFO or folder; at most `limit`), so no
    input can hang or exhaust memory; this is the input gate every file read goes through."""
    check_regular(path, limit)
    with open(path, "rb") as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise HamtuneError(f"{path}: more than the {limit} bytes such a file may hold; refused")
    return data


def read_member(archive: zipfile.ZipFile, member: str, limit: int = MAX_IMAGE_BYTES) -> bytes:
    """One member of a zip, refused before reading when it claims more than `limit` bytes (a zip bomb)."""
    info = archive.getinfo(member)
    if info.file_size > limit:
        raise ValueError(f"{member} unpacks to {info.file_size} bytes, more than the {limit} an image may hold")
    return archive.read(member)


def read_npz(path: Path) -> dict[str, np.ndarray]:
    """Every array of an .npz file (no pickles), or {} when there is none."""
    path = Path(path)
    if not path.exists():
        return {}
    try:
        check_regular(path, None)
        with np.load(path, allow_pickle=False) as archive:
            return {key: archive[key] for key in archive.files}
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as exc:  # object arrays would need pickle: refused
        raise HamtuneError(f"{path}: not a NumPy archive of plain arrays ({first_line(exc, 120)}); delete it") from None


def read_json_record(path: Path, fields: dict[str, type | tuple[type, ...]]) -> dict | None:
    """A small JSON object hamtune wrote beside results (sweep.json, confirm.json): None when absent; otherwise an
    object whose listed fields, where present, have the listed types, or a one-line error naming the file and field
    (a received folder's file is read as data, never trusted to be what it claims)."""
    import json

    path = Path(path)
    if not os.path.lexists(path):
        return None
    try:
        value = json.loads(read_text(path, 16 << 20))
    except (ValueError, UnicodeDecodeError, OSError) as exc:
        raise HamtuneError(f"{path}: not readable JSON ({first_line(exc, 120)}); restore it or delete it") from None
    if not isinstance(value, dict):
        raise HamtuneError(f"{path}: must hold a JSON object, holds {type(value).__name__}; restore it or delete it")
    for key, kinds in fields.items():
        wanted = kinds if isinstance(kinds, tuple) else (kinds,)
        if (
            key in value
            and value[key] is not None
            and (not isinstance(value[key], wanted) or (isinstance(value[key], bool) and bool not in wanted))
        ):
            names = " or ".join(k.__name__ for k in wanted)
            raise HamtuneError(f"{path}: field {key!r} must be {names}, got {type(value[key]).__name__}; restore it or delete it")
    return value
