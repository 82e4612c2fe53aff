"""What a received bundle is checked for before anything in it is read as a model.

A bundle travels between people, so `load_bundle` trusts nothing in it: every file must be a regular
file (no links, devices or FIFOs) of a bounded size with a name hamtune writes, and its sha256 must be
the one bundle.json records ("files", bundle version 3). The digests catch a file edited, truncated or
swapped for another trial's after export; they are not a signature (whoever edits bundle.json can
recompute them), so what could run code is refused on its own grounds: weights load as tensors only
(weights_only=True) and a torch.export program is inspected before torch reads it (export/programs.py).
"""

from __future__ import annotations

import hashlib
import os
import stat
from pathlib import Path

from hamtune.errors import HamtuneError
from hamtune.files import check_regular

DIGESTS = "files"  # bundle.json key: relative path -> sha256 of every other file of the bundle
MAX_FILE_BYTES = 8 << 30  # a weights file or program larger than this is not one hamtune wrote for these models
CHUNK = 1 << 20


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def listing(folder: Path, names: set[str], top: str) -> list[str]:
    """Every file under `folder` (relative, sorted) except `top`; links, non-regular files, oversized files and
    names a bundle never holds (`names`, at any depth) are refused by name."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=False):
        for name in dirs + files:
            path = Path(root) / name
            relative = path.relative_to(folder).as_posix()
            if name not in names:
                raise HamtuneError(
                    f"{path}: a bundle holds no such file; it was added after export, so the bundle was refused (export it again)"
                )
            mode = os.lstat(path).st_mode
            if stat.S_ISDIR(mode):
                continue
            check_regular(path, MAX_FILE_BYTES, links=False)
            if relative != top:
                found.append(relative)
    return sorted(found)


def digests(folder: Path, names: set[str], top: str) -> dict[str, str]:
    """What bundle.json records: the sha256 of each file under `folder` but `top` (bundle.json itself)."""
    return {relative: sha256(Path(folder) / relative) for relative in listing(Path(folder), names, top)}


def verify(folder: Path, recorded, names: set[str], top: str) -> None:
    """Refuse a bundle whose files are not exactly those bundle.json records, with the recorded digests."""
    where = Path(folder) / top
    if not isinstance(recorded, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in recorded.items()):
        raise HamtuneError(f"{where}: '{DIGESTS}' must map each file of the bundle to its sha256; export it again")
    present = listing(Path(folder), names, top)
    missing, extra = sorted(set(recorded) - set(present)), sorted(set(present) - set(recorded))
    if missing or extra:
        what = f"{missing[0]} is missing" if missing else f"{extra[0]} was added"
        raise HamtuneError(f"{where}: {what} since export; the bundle was refused (export it again)")
    for relative in present:
        if sha256(Path(folder) / relative) != recorded[relative]:
            raise HamtuneError(
                f"{Path(folder) / relative}: its sha256 differs from the one {top} records: the file was "
                "edited or replaced after export, so the bundle was refused (export it again)"
            )
