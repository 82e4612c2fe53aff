"""Decode dermoscopy images to small square uint8 arrays, fast: JPEG draft mode, worker processes."""

from __future__ import annotations

import io
import os
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from hamtune.data import MAX_IMAGE_SIZE, MIN_IMAGE_SIZE
from hamtune.errors import HamtuneError, UsageError
from hamtune.files import MAX_IMAGE_BYTES, MAX_SOURCE_BYTES, check_regular, read_input, read_member
from hamtune.workers import capped
from hamtune.workers import pool as worker_pool

CROPS = ("center", "resize", "pad")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")


@dataclass(frozen=True)
class ImageRef:
    """Where one image's bytes live: a file, or a member of a zip read in place."""

    path: str
    member: str | None = None

    def __str__(self) -> str:
        return f"{self.path}!{self.member}" if self.member else self.path


@dataclass(frozen=True)
class Preprocess:
    """How a source image becomes a training array; recorded in caches and exported models."""

    size: int = 64
    crop: str = "center"
    channels: int = 3

    def __post_init__(self) -> None:
        if self.crop not in CROPS:
            raise UsageError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.channels not in (1, 3):
            raise UsageError(f"--channels must be 1 or 3, got {self.channels}")
        if not MIN_IMAGE_SIZE <= self.size <= MAX_IMAGE_SIZE:
            raise UsageError(f"--size must be between {MIN_IMAGE_SIZE} and {MAX_IMAGE_SIZE} pixels, got {self.size}")


_open_zips: dict[str, zipfile.ZipFile] = {}


def read_bytes(ref: ImageRef) -> bytes:
    """Read an image's encoded bytes through the input gate; zips stay open per process so members are read in place."""
    if ref.member is None:
        try:
            return read_input(Path(ref.path), MAX_IMAGE_BYTES)
        except HamtuneError as exc:
            raise ValueError(str(exc)) from None
    archive = _open_zips.get(ref.path)
    if archive is None:
        check_regular(Path(ref.path), MAX_SOURCE_BYTES)
        archive = _open_zips[ref.path] = zipfile.ZipFile(ref.path)
    return read_member(archive, ref.member)


def _crop_box(width: int, height: int, crop: str) -> tuple[float, float, float, float]:
    if crop != "center":
        return (0.0, 0.0, float(width), float(height))
    side = min(width, height)
    left, top = (width - side) / 2, (height - side) / 2
    return (left, top, left + side, top + side)


RESIZE_RULE = (  # what `decode` does, stated for people who preprocess without hamtune (ONNX metadata, the recipe in docs/integrations.md)
    "PIL: Image.open; for a JPEG, image.draft(mode, (size*w//side, size*h//side)) with side = min(w, h) for the "
    "center crop, max(w, h) for pad, and (size, size) for resize (DCT-domain downscale); a 16- or 32-bit grayscale "
    "image (PIL mode I;16*, I or F) is first scaled to 8 bits: round(value * 255 / top), clipped to 0-255, mode L, "
    "with top = 65535 for I;16* and for I holding values above 255, 1.0 for F holding values up to 1, else 255 "
    "(PIL's own convert would clip it at 255: a 16-bit photograph turns white); convert to RGB (or L); "
    "then image.resize((size, size), Image.Resampling.BILINEAR, box=CROP, reducing_gap=2.0) where CROP is the "
    "centred square of side min(w, h) of the decoded image (center), the whole image (resize), or the whole "
    "image pasted centred on a black square of side max(w, h) (pad)"
)
MIN_SOURCE_SIDE = 8  # px: below this an image carries no lesion to learn from, only a stretched colour
MAX_SOURCE_PIXELS = 64_000_000  # a dermoscope's largest photos are ~24 MP; more is a decompression bomb, not a lesion


def to_8bit(image: Image.Image) -> Image.Image:
    """16-bit and 32-bit grayscale (PNG/TIFF 'I;16', 'I', 'F') scaled to 8 bits; PIL's own convert clips
    them at 255, which turns a 16-bit photograph white."""
    if image.mode not in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        return image
    array = np.asarray(image, dtype=np.float64)
    top = 65535.0 if image.mode.startswith("I;16") or (image.mode == "I" and array.max(initial=0) > 255) else 255.0
    if image.mode == "F":
        top = 1.0 if array.max(initial=0) <= 1.0 else top
    return Image.fromarray(np.clip(np.rint(array * (255.0 / top)), 0, 255).astype(np.uint8), "L")


def to_square(image: Image.Image, pre: Preprocess) -> np.ndarray:
    """Apply the crop/resize/pad rule to one decoded PIL image; returns HxWxC uint8."""
    mode = "L" if pre.channels == 1 else "RGB"
    image = to_8bit(image)
    if image.mode != mode:
        image = image.convert(mode)
    if pre.crop == "pad":
        side = max(image.size)
        canvas = Image.new(mode, (side, side))
        canvas.paste(image, ((side - image.width) // 2, (side - image.height) // 2))
        image = canvas
    box = _crop_box(image.width, image.height, pre.crop)
    out = image.resize((pre.size, pre.size), Image.Resampling.BILINEAR, box=box, reducing_gap=2.0)
    array = np.asarray(out, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def decode(data: bytes, pre: Preprocess) -> tuple[np.ndarray, tuple[int, int]]:
    """Decode encoded bytes with DCT-domain downscaling first; returns the array and the source size."""
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:
        raise ValueError(f"refused as a decompression bomb ({exc})") from None
    source_size = image.size
    if source_size[0] * source_size[1] > MAX_SOURCE_PIXELS:
        raise ValueError(
            f"the image claims {source_size[0]}x{source_size[1]} px, more than the {MAX_SOURCE_PIXELS:,} "
            "pixels hamtune decodes (a decompression bomb?)"
        )
    if min(source_size) < MIN_SOURCE_SIDE:
        raise ValueError(f"the image is only {source_size[0]}x{source_size[1]} px, smaller than {MIN_SOURCE_SIDE} px a side")
    mode = "L" if pre.channels == 1 else "RGB"
    if image.format == "JPEG":
        w, h = image.size
        if pre.crop == "center":
            side = min(w, h)
            want = (max(1, pre.size * w // side), max(1, pre.size * h // side))
        elif pre.crop == "pad":
            side = max(w, h)
            want = (max(1, pre.size * w // side), max(1, pre.size * h // side))
        else:
            want = (pre.size, pre.size)
        image.draft(mode, want)
    image.load()
    return to_square(image, pre), source_size


def _decode_chunk(args: tuple[list[ImageRef], Preprocess]) -> tuple[np.ndarray, list[tuple[int, int]], list[tuple[int, str]]]:
    refs, pre = args
    out = np.zeros((len(refs), pre.size, pre.size, pre.channels), dtype=np.uint8)
    sizes: list[tuple[int, int]] = []
    errors: list[tuple[int, str]] = []
    for i, ref in enumerate(refs):
        try:
            out[i], size = decode(read_bytes(ref), pre)
            sizes.append(size)
        except Exception as exc:  # one broken image (truncated, a bomb, a codec bug) is a reason, never the end of the run
            errors.append((i, f"{type(exc).__name__}: {exc}"))
            sizes.append((0, 0))
    return out, sizes, errors


def default_workers() -> int:
    """Worker processes for decoding: all cores but at most 8 (JPEG decode is CPU-bound)."""
    return max(1, min(8, os.cpu_count() or 1))


def decode_many(
    refs: Sequence[ImageRef], pre: Preprocess, out: np.ndarray, workers: int | None = None, chunk: int = 64
) -> Iterator[tuple[int, list[tuple[int, int]], list[tuple[int, str]]]]:
    """Decode refs into `out` (N,H,W,C) in chunks; yields (count done, source sizes, errors) per chunk.

    Errors come back as (global index, message) so the caller can name the file.
    """
    starts = list(range(0, len(refs), chunk))
    workers = capped(workers or default_workers(), len(starts))
    jobs = [(list(refs[s : s + chunk]), pre) for s in starts]
    if workers == 1 or len(jobs) == 1:
        results: Iterator = map(_decode_chunk, jobs)
        pool = None
    else:
        pool = worker_pool(workers)  # workers die with this process
        results = pool.map(_decode_chunk, jobs)
    try:
        for start, (arrays, sizes, errors) in zip(starts, results):
            out[start : start + len(arrays)] = arrays
            yield len(arrays), sizes, [(start + i, msg) for i, msg in errors]
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)


def resize_array(pixels: np.ndarray, pre: Preprocess) -> np.ndarray:
    """Bring already-decoded arrays (hmnist, DermaMNIST) to the requested size and channels."""
    n, h, w, c = pixels.shape
    if (h, w, c) == (pre.size, pre.size, pre.channels):
        return np.ascontiguousarray(pixels, dtype=np.uint8)
    out = np.empty((n, pre.size, pre.size, pre.channels), dtype=np.uint8)
    for i in range(n):
        image = Image.fromarray(pixels[i, :, :, 0] if c == 1 else pixels[i])
        out[i] = to_square(image, pre)
    return out
