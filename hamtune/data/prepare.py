"""Turn any HAM10000 source into a prepared cache: uint8 NHWC array + Parquet table + manifest.

The cache is what every later stage reads. It is keyed by the source's file stats and the
preprocessing options, so a re-run with the same inputs is a hit in well under a second, and it
is written under a temporary name then renamed, so a crash never leaves half a cache.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import time
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

import hamtune
from hamtune.data.images import Preprocess, decode_many, resize_array
from hamtune.data.labels import DX_CODES
from hamtune.data.loader import Source
from hamtune.data.sources import ARRAY_FORMS, detect, load_source
from hamtune.errors import HamtuneError, UsageError
from hamtune.files import atomic_folder
from hamtune.gate import is_cache, output
from hamtune.workers import remove_stale_temporaries

log = logging.getLogger(__name__)

CACHE_VERSION = 1
JPEG_DEFAULT_SIZE = 64
SYNTHETIC_DEFAULT: dict[str, Any] = {"n": 2000, "seed": 0, "image_size": (600, 450)}


def cache_root() -> Path:
    """Where prepared caches and the synthetic default live ($HAMTUNE_CACHE or ~/.cache/hamtune)."""
    return Path(os.environ.get("HAMTUNE_CACHE") or Path.home() / ".cache" / "hamtune")


@dataclass
class Prepared:
    """A loaded cache: images stay memory-mapped until someone copies them."""

    path: Path
    images: np.ndarray
    meta: pd.DataFrame
    manifest: dict

    @property
    def fingerprint(self) -> str:
        return self.manifest["fingerprint"]

    @property
    def name(self) -> str:
        return self.manifest["name"]

    @property
    def preprocess(self) -> Preprocess:
        return Preprocess(**self.manifest["preprocess"])

    def located_manifest(self) -> dict:
        """The manifest plus where this cache lives, for results that must find the data again."""
        return {**self.manifest, "path": str(self.path)}


def _stat(path: Path) -> tuple[str, int, int]:
    stat = path.stat()
    return str(path.resolve()), stat.st_size, stat.st_mtime_ns


def _scan(folder: Path) -> list[tuple[str, int, int]]:
    """(path, size, mtime) of the files in a folder and its subfolders, one os.scandir each (stat results
    come cached with the listing, which keeps a cache hit on 10,015 JPEGs well under a second)."""
    folder = folder.resolve()
    with os.scandir(folder) as entries:
        folders = [folder] + [Path(e.path) for e in entries if e.is_dir() and not e.name.startswith(".")]
    stats = []
    for directory in folders:
        with os.scandir(directory) as entries:
            stats += [(e.path, e.stat().st_size, e.stat().st_mtime_ns) for e in entries if e.is_file()]
    return sorted(stats)


def _file_stats(src: Path, form: str, metadata: Path | None) -> list[tuple[str, int, int]]:
    """Every input file: an array file on its own, or the whole folder around a release/ISIC source."""
    stats = [_stat(src)] if src.is_file() and form in ARRAY_FORMS else _scan(src if src.is_dir() else src.parent)
    return stats + ([_stat(metadata)] if metadata else [])


def source_signature(src: Path, form: str, options: dict, metadata: Path | None, skip_missing: bool) -> str:
    """A key that changes when any input file or option changes; computed from file stats only."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(json.dumps([CACHE_VERSION, form, options, skip_missing], sort_keys=True).encode())
    for path, size, mtime in _file_stats(src, form, metadata):
        digest.update(f"{path}\0{size}\0{mtime}\n".encode())
    return digest.hexdigest()


def content_fingerprint(images: np.ndarray, meta: pd.DataFrame) -> str:
    """A hash of what a model actually sees: pixels and labels, independent of where they came from."""
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr(images.shape).encode())
    step = max(1, (64 << 20) // max(1, images[0].nbytes)) if len(images) else 1
    for start in range(0, len(images), step):
        digest.update(np.ascontiguousarray(images[start : start + step]).tobytes())
    lesions = meta["lesion_id"].fillna("").astype(str)
    digest.update("\n".join(meta["image_id"] + "\t" + lesions + "\t" + meta["dx"]).encode())
    return digest.hexdigest()


def rebuild_command(manifest: dict) -> str:
    pre = manifest.get("preprocess", {})
    return (
        f"hamtune data prepare {manifest.get('source', 'SRC')} --size {pre.get('size', JPEG_DEFAULT_SIZE)} "
        f"--crop {pre.get('crop', 'center')} --channels {pre.get('channels', 3)} --force"
    )


def _decode_source(
    source: Source, pre: Preprocess, out: np.ndarray, workers: int | None, progress: bool
) -> tuple[Counter, list[tuple[int, str]]]:
    sizes: Counter = Counter()
    errors: list[tuple[int, str]] = []
    if source.pixels is not None:
        out[:] = resize_array(source.pixels, pre)
        _, h, w, _ = source.pixels.shape
        sizes[f"{w}x{h}"] = len(out)
        return sizes, errors
    assert source.refs is not None  # a Source holds either pixels or refs
    bar = tqdm(total=len(out), desc="decoding", unit="img", disable=None if progress else True, leave=False)
    with bar:
        for done, chunk_sizes, chunk_errors in decode_many(source.refs, pre, out, workers=workers):
            sizes.update(f"{w}x{h}" for w, h in chunk_sizes if w)
            errors += chunk_errors
            bar.update(done)
    return sizes, errors


def _drop_unreadable(source: Source, errors: list[tuple[int, str]], skip: bool) -> np.ndarray:
    keep = np.ones(len(source.table), dtype=bool)
    if not errors:
        return keep
    assert source.refs is not None  # only decoding refs records errors
    named = "; ".join(f"{source.refs[i]} ({msg})" for i, msg in errors[:3])
    message = f"{len(errors)} image(s) could not be decoded: {named}"
    if not skip:
        raise HamtuneError(f"{message}; pass --skip-missing to go on without them")
    source.note(message + "; skipped")
    keep[[i for i, _ in errors]] = False
    return keep


def allocate(path: Path) -> None:
    """Reserve a memory map's file on disk now: a full disk is then an OSError (ENOSPC) here, not a
    SIGBUS (rc 135) when the decoder first touches a page that cannot be backed."""
    if hasattr(os, "posix_fallocate"):
        with open(path, "r+b") as handle:
            os.posix_fallocate(handle.fileno(), 0, os.path.getsize(path))


def _write(tmp: Path, source: Source, pre: Preprocess, workers: int | None, skip_missing: bool, progress: bool) -> dict:
    started = time.perf_counter()
    n = len(source.table)
    shape = (n, pre.size, pre.size, pre.channels)
    images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=shape)
    allocate(tmp / "images.npy")
    sizes, errors = _decode_source(source, pre, images, workers, progress)
    keep = _drop_unreadable(source, errors, skip_missing)
    meta = source.table[keep].reset_index(drop=True)
    if not keep.all():
        kept = np.array(images[keep])
        del images
        images = np.lib.format.open_memmap(tmp / "images.npy", mode="w+", dtype=np.uint8, shape=kept.shape)
        allocate(tmp / "images.npy")
        images[:] = kept
    if len(meta) == 0:
        raise HamtuneError(f"{source.path}: no readable images left")
    images.flush()
    meta["label"] = meta["dx"].map({dx: i for i, dx in enumerate(DX_CODES)}).astype("int8")
    meta["lesion_id"] = meta["lesion_id"].astype("string")
    meta.to_parquet(tmp / "meta.parquet", index=False)
    return {
        "cache_version": CACHE_VERSION,
        "hamtune_version": hamtune.__version__,
        "form": source.form,
        "source": str(source.path.resolve()),
        "mapping": source.mapping,
        "preprocess": asdict(pre),
        "count": len(meta),
        "counts": {dx: int((meta["dx"] == dx).sum()) for dx in DX_CODES},
        "lesion_ids": bool(meta["lesion_id"].notna().any()),
        "source_sizes": dict(sizes.most_common()),
        "shape": list(images.shape),
        "fingerprint": content_fingerprint(images, meta),
        "notes": source.notes,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "seconds": round(time.perf_counter() - started, 3),
    }


def default_size(form: str, pixels_shape: tuple[int, ...] | None) -> int:
    """Array sources keep their native size unless asked; JPEG sources default to 64 px."""
    return int(pixels_shape[1]) if form in ARRAY_FORMS and pixels_shape else JPEG_DEFAULT_SIZE


def prepare(
    src: Path,
    size: int | None = None,
    crop: str = "center",
    channels: int = 3,
    out: Path | None = None,
    workers: int | None = None,
    skip_missing: bool = False,
    metadata: Path | None = None,
    force: bool = False,
    progress: bool = True,
    out_flag: str = "--out",
) -> Path:
    """Prepare `src` (any supported form) into a cache folder and return its path; a hit returns at once. `out` goes
    through the output gate: only a cache is ever replaced (never a user's folder, the source or a folder above)."""
    src = Path(src)
    if workers is not None and workers < 1:
        raise UsageError(f"--workers must be at least 1, got {workers}")
    if metadata is not None and not Path(metadata).is_file():
        raise HamtuneError(f"--metadata {metadata}: no such file")
    form = detect(src)
    Preprocess(JPEG_DEFAULT_SIZE if size is None else size, crop, channels)  # --size 0 is an error, not the default
    requested = {"size": size, "crop": crop, "channels": channels}
    signature = source_signature(src, form, requested, metadata, skip_missing)
    size_label = f"{size}px" if size else "native"
    name = f"{form}-{src.stem or src.name}-{size_label}-{crop}-{channels}ch-{signature[:10]}"
    out = Path(out) if out else cache_root() / "prepared" / name
    output(out, flag=out_flag, kind="folder", own=is_cache, existing="replace", reads=[src, *([metadata] if metadata else [])])
    if not force and (out / "manifest.json").exists():
        try:
            if json.loads((out / "manifest.json").read_text()).get("signature") == signature:
                log.debug("cache hit: %s", out)
                return out
        except (OSError, ValueError):
            pass
    for stale in remove_stale_temporaries(out.parent):
        log.warning("removed %s, left by a process that died while preparing", stale)
    source = load_source(src, skip_missing, metadata)
    native = source.pixels.shape if source.pixels is not None else None
    pre = Preprocess(size or default_size(form, native), crop, channels)
    try:
        with atomic_folder(out) as tmp:  # on any error the temporary folder is removed
            manifest = _write(tmp, source, pre, workers, skip_missing, progress)
            manifest.update(name=out.name, signature=signature)
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EDQUOT):
            raise
        raise HamtuneError(
            f"{out.parent}: no space left on device while preparing {src} (nothing was kept); "
            "free some space or point HAMTUNE_CACHE (or --out) at a larger disk"
        ) from None
    return out


def load_prepared(path: Path, verify: bool = True) -> Prepared:
    """Open a cache; a truncated or corrupted one is an error that names the file and the rebuild command."""
    path = Path(path)
    manifest_path = path / "manifest.json"
    try:
        manifest = json.loads(manifest_path.read_text())
        manifest["fingerprint"], manifest["shape"], manifest["preprocess"]
    except (OSError, ValueError, KeyError, TypeError):
        raise HamtuneError(
            f"{manifest_path}: missing or unreadable, so {path} is not a usable prepared cache; "
            "rebuild it with: hamtune data prepare SRC --force"
        ) from None
    rebuild = f"rebuild it with: {rebuild_command(manifest)}"
    if manifest.get("cache_version") != CACHE_VERSION:
        raise HamtuneError(f"{path}: cache version {manifest.get('cache_version')} is not {CACHE_VERSION}; {rebuild}")
    try:
        images = np.load(path / "images.npy", mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise HamtuneError(f"{path / 'images.npy'}: unreadable or truncated ({exc}); {rebuild}") from None
    if list(images.shape) != manifest["shape"] or images.dtype != np.uint8:
        raise HamtuneError(f"{path / 'images.npy'}: shape {images.shape} does not match the manifest's {manifest['shape']}; {rebuild}")
    try:
        meta = pd.read_parquet(path / "meta.parquet")
    except Exception as exc:  # pyarrow raises several unrelated types for a damaged file
        raise HamtuneError(f"{path / 'meta.parquet'}: unreadable ({type(exc).__name__}); {rebuild}") from None
    if len(meta) != len(images) or not {"image_id", "lesion_id", "dx"} <= set(meta.columns):
        raise HamtuneError(f"{path / 'meta.parquet'}: does not match images.npy; {rebuild}")
    if verify and content_fingerprint(images, meta) != manifest["fingerprint"]:
        raise HamtuneError(f"{path}: contents do not match the manifest's fingerprint (corrupted?); {rebuild}")
    return Prepared(path, images, meta, manifest)


def synthetic_source(spec: str = "synthetic", progress: bool = True) -> Path:
    """The embedded default, synthesised once under the cache: `synthetic[:n=2000,seed=0,size=600x450]`
    writes the HAM10000 release layout; `synthetic-isic2018[:n=2000,test=500,...]` the ISIC 2018 Task 3
    layout (its training images are those of `synthetic` with the same n and seed)."""
    from hamtune.data.synth import synthesize_isic2018, synthesize_release

    layout, _, rest = spec.partition(":")
    try:
        options = dict(part.split("=", 1) for part in rest.split(",") if part)
        n = int(options.pop("n", SYNTHETIC_DEFAULT["n"]))
        seed = int(options.pop("seed", SYNTHETIC_DEFAULT["seed"]))
        n_test = int(options.pop("test", 500))
        w, h = (int(v) for v in options.pop("size", "x".join(map(str, SYNTHETIC_DEFAULT["image_size"]))).split("x"))
    except ValueError:
        raise HamtuneError(f"{spec!r}: expected e.g. synthetic:n=2000,seed=0,size=600x450") from None
    if options or layout not in ("synthetic", "synthetic-isic2018"):
        raise HamtuneError(
            f"{spec!r}: unknown synthetic dataset or option(s) {', '.join(options)}; valid: n, seed, size (and test for synthetic-isic2018)"
        )
    root = cache_root() / "synthetic"
    if layout == "synthetic":
        return synthesize_release(root / f"ham-synth-n{n}-seed{seed}-{w}x{h}", n=n, seed=seed, image_size=(w, h), progress=progress)
    out = root / f"isic2018-synth-n{n}-test{n_test}-seed{seed}-{w}x{h}"
    return synthesize_isic2018(out, n_train=n, n_test=n_test, seed=seed, image_size=(w, h), progress=progress)


def resolve_data(
    spec: str | Path, size: int | None = None, crop: str = "center", channels: int = 3, progress: bool = True, **kwargs
) -> Prepared:
    """`synthetic...`, a prepared cache folder, or any source (prepared on first use) -> a loaded cache."""
    spec = str(spec)
    if spec.startswith("synthetic"):
        src = synthetic_source(spec, progress)
    else:
        src = Path(spec).expanduser()
        if (src / "manifest.json").exists():
            return load_prepared(src)
    return load_prepared(prepare(src, size=size, crop=crop, channels=channels, progress=progress, **kwargs))
