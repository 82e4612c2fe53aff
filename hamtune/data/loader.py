"""What every loader of a HAM10000 form shares: the loaded `Source` and the checks all of them make.

Each form's module (release, hmnist, dermamnist, isic2018) has one function with one signature,
`load(src, *, skip_missing=False, metadata=None) -> Source`; sources.py detects the form and dispatches.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np
import pandas as pd

from hamtune.data.images import ImageRef
from hamtune.data.labels import DX_CODES
from hamtune.errors import HamtuneError

log = logging.getLogger(__name__)


@dataclass
class Source:
    """A loaded dataset before decoding: one row per image with canonical dx codes.

    `table` has at least image_id, lesion_id (may be missing), dx; images are either encoded
    (`refs`, one per row) or already decoded (`pixels`, N x H x W x C uint8).
    """

    form: str
    path: Path
    table: pd.DataFrame
    mapping: str
    files: list[Path]
    refs: list[ImageRef] | None = None
    pixels: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def note(self, message: str) -> None:
        self.notes.append(message)
        log.warning(message)


def check_mapping(dx: pd.Series, mapping: str, file: Path) -> None:
    """Refuse a label order that cannot be right: in every HAM10000 subset, nevi are the majority."""
    unknown = sorted(set(dx) - set(DX_CODES))
    if unknown:
        raise HamtuneError(f"{file}: unknown dx {unknown}; expected one of {', '.join(DX_CODES)}")
    counts = dx.value_counts()
    if len(dx) >= 50 and counts.index[0] != "nv":
        raise HamtuneError(
            f"{file}: under the {mapping} label order the most frequent class is {counts.index[0]!r} "
            f"({counts.iloc[0]} of {len(dx)} rows), but nevi (nv) are the majority of HAM10000; "
            "is this file really in that format?"
        )


class Loader(Protocol):
    """A form's `load`: options a form has no use for (metadata for a release, skip_missing for arrays) are ignored."""

    def __call__(self, src: Path, *, skip_missing: bool = False, metadata: Path | None = None) -> Source: ...


def pick_one(folder: Path, candidates: list[Path], what: str) -> Path:
    """Choose among several files of one form, or ask the user to name one."""
    if len(candidates) == 1:
        return candidates[0]
    names = ", ".join(sorted(p.name for p in candidates))
    raise HamtuneError(f"{folder}: several {what} files ({names}); pass the one you want as SRC")
