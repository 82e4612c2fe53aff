"""`hamtune score`: anomaly scores of new images from an exported model, computed exactly as in training.

Files are decoded by the same code that prepared the training cache (hamtune.data.images), and the
score is the same function the evaluation used (hamtune.train.evaluate), so a prepared test image
scores here what it scored in its trial.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from hamtune.data.images import IMAGE_SUFFIXES, ImageRef, decode_many
from hamtune.data.prepare import Prepared, load_prepared
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError
from hamtune.export.bundle import Bundle, EnsembleBundle, Scorer
from hamtune.gate import is_marked, output

CHUNK = 1024
MANY = 100
Maps = Callable[[np.ndarray, list[str]], list[str]]  # images and their names -> the names their maps were written as


@dataclass
class Inputs:
    """What the command line named, sorted into image files and prepared caches."""

    files: list[Path] = field(default_factory=list)
    caches: list[Path] = field(default_factory=list)
    missing: list[tuple[Path, str]] = field(default_factory=list)  # with the reason


def collect(paths: list[Path]) -> Inputs:
    """Files as given; folders searched recursively for jpg/jpeg/png; a folder with manifest.json is a cache."""
    found = Inputs()
    for path in map(Path, paths):
        if (path / "manifest.json").is_file():
            found.caches.append(path)
        elif path.is_dir():
            found.files += sorted(p for p in path.rglob("*") if not p.is_dir() and p.suffix.lower() in IMAGE_SUFFIXES)
        elif path.is_file():
            found.files.append(path)
        else:
            found.missing.append((path, "not a regular file (a FIFO, socket or device)" if path.exists() else "no such file or folder"))
    return found


def _reason(message: str) -> str:
    if "cannot identify image file" in message:
        return "not a JPEG or PNG image (unknown format)"
    return message


def score_files(
    bundle: Bundle | EnsembleBundle, scorer: Scorer, files: list[Path], progress: bool, maps: Maps | None = None
) -> tuple[pd.DataFrame, list[tuple[Path, str]]]:
    """Decode and score image files in chunks (and map them, with `maps`); unreadable files come back with the
    reason, not as an error."""
    pre = bundle.preprocess
    names, scores, problems, written = [], [], [], []
    bar = tqdm(total=len(files), desc="scoring", unit="img", disable=True if not progress or len(files) < MANY else None, leave=False)
    with bar:
        for start in range(0, len(files), CHUNK):
            chunk = files[start : start + CHUNK]
            images = np.zeros((len(chunk), pre.size, pre.size, pre.channels), dtype=np.uint8)
            failed: dict[int, str] = {}
            for done, _, errors in decode_many([ImageRef(str(p)) for p in chunk], pre, images):
                failed.update(errors)
                bar.update(done)
            keep = [i for i in range(len(chunk)) if i not in failed]
            problems += [(chunk[i], _reason(failed[i])) for i in sorted(failed)]
            if keep:
                names += [str(chunk[i]) for i in keep]
                scores.append(scorer(images[keep]))
                if maps is not None:
                    written += maps(images[keep], [str(chunk[i]) for i in keep])
    values = np.concatenate(scores) if scores else np.zeros(0)
    table = pd.DataFrame({"image": names, "score": values})
    if maps is not None:
        table["map"] = written
    return table, problems


def score_prepared(bundle: Bundle | EnsembleBundle, scorer: Scorer, data: Prepared, maps: Maps | None = None) -> pd.DataFrame:
    """Every image of a prepared cache, with its diagnosis and its label under the model's protocol (and its map)."""
    if data.preprocess != bundle.preprocess:
        raise HamtuneError(
            f"{data.path}: prepared as {data.preprocess}, but the model expects {bundle.preprocess}; "
            "prepare the source again with the model's size, crop and channels"
        )
    scores = np.concatenate([scorer(data.images[s : s + CHUNK]) for s in range(0, len(data.images), CHUNK)])
    dx = data.meta["dx"].astype(str).to_numpy()
    labels = pd.array(get_protocol(bundle.protocol).labels(dx), dtype="Int8")
    ids = data.meta["image_id"].astype(str).to_numpy()
    table = pd.DataFrame({"image": ids, "score": scores, "dx": dx, "label": labels})
    if maps is not None:
        table["map"] = [name for s in range(0, len(ids), CHUNK) for name in maps(data.images[s : s + CHUNK], list(ids[s : s + CHUNK]))]
    return table


def check_finite(table: pd.DataFrame) -> None:
    """A NaN or infinite score (an image the model cannot reconstruct in floating point, or a broken program) is
    an error naming the image: written as an empty cell it would read as `flagged=False`, i.e. normal."""
    bad = ~np.isfinite(table["score"].to_numpy(float))
    if bad.any():
        first = table["image"].iloc[int(np.argmax(bad))]
        raise HamtuneError(
            f"{first}: the model scored it {table['score'].iloc[int(np.argmax(bad))]} (not a finite number)"
            f"{f', and {int(bad.sum()) - 1} more image(s)' if bad.sum() > 1 else ''}; no scores were written"
        )


@dataclass
class Scored:
    """The table written, and the inputs that could not be scored."""

    table: pd.DataFrame
    problems: list[tuple[Path, str]]
    notes: list[str]


def score_inputs(
    bundle: Bundle | EnsembleBundle,
    paths: list[Path],
    device: str = "auto",
    progress: bool = True,
    format: str = "torch",
    maps: Path | None = None,
) -> Scored:
    """Score every readable image among `paths` with the bundle's model as `format` (torch, onnx, torch-export);
    flagged = score above the bundle's validation threshold. With `maps`, each image's anomaly map goes there
    (export/maps.py; computed with the PyTorch weights whatever the format) and the table names it."""
    from hamtune.export.maps import MapWriter
    from hamtune.export.portable import scorer as make_scorer
    from hamtune.train.loop import resolve_device

    if maps is not None:
        output(maps, flag="--maps", kind="folder", own=is_marked, existing="add", reads=[bundle.path, *paths])
    found = collect(paths)
    target = resolve_device(device)
    writer = MapWriter(bundle, maps, target) if maps is not None else None  # refuses a score without a map first
    scorer = make_scorer(bundle, format, target)
    problems = list(found.missing)
    notes, parts = [], []
    for cache in found.caches:
        data = load_prepared(cache)
        if data.fingerprint == (bundle.info.get("data") or {}).get("fingerprint"):
            notes.append(f"{cache} is the model's own training data: its train and val images score optimistically")
        parts.append(score_prepared(bundle, scorer, data, writer))
    if found.files:
        table, unreadable = score_files(bundle, scorer, found.files, progress, writer)
        parts.append(table)
        problems += unreadable
    parts = [p for p in parts if len(p)]
    if not parts:
        raise HamtuneError(f"no readable image among {', '.join(map(str, paths))} ({len(problems)} unreadable)")
    table = pd.concat(parts, ignore_index=True)
    check_finite(table)
    table.insert(2, "flagged", table["score"] > bundle.threshold)
    return Scored(table, problems, notes)
