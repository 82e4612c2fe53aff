"""Acquisition shifts: what differs between one clinic's dermatoscope and the next, as deterministic image transforms.

Each shift takes uint8 images (N, H, W, C) and a strength in [0, 1] (0: the images unchanged; 1: the strongest
setting a real clinic plausibly differs by) and returns uint8 images of the same shape. The hair-like occluders are
drawn from a generator seeded by the image's position and `seed`, and a stronger setting draws the weaker one's
hairs and more, so every shift changes its images more as its strength grows. The stress test applies them to the
prepared images at the model's input size (the cache holds nothing larger); a shift at source resolution would be
more faithful, for blur, JPEG and resolution especially.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from hamtune.errors import UsageError

Transform = Callable[[np.ndarray, float, int], np.ndarray]  # (uint8 images, strength in [0, 1], seed) -> uint8 images
REFERENCE_SIZE = 64  # blur radii and hair widths are given at 64 px and scaled to the images' own size
MAX_HAIRS = 10
HAIR_COLOUR = (40, 28, 22)  # a dark brown hair on the RGB channels; its grey level on one channel
DEFAULT_STRENGTHS = (0.25, 0.5, 1.0)
LUMINANCE = np.array([0.299, 0.587, 0.114])  # ITU-R BT.601, as PIL converts RGB to grey


def _to_uint8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(values), 0, 255).astype(np.uint8)


def _gains(images: np.ndarray, gains: np.ndarray) -> np.ndarray:
    """Per-channel gains (R, G, B); one grey channel takes their luminance-weighted mean (what a grey camera sees)."""
    if images.shape[-1] == 1:
        gains = np.array([gains @ LUMINANCE])
    return _to_uint8(images.astype(np.float32) * gains.astype(np.float32))


def white_balance(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """A warmer colour temperature: red up and blue down by up to 20% (a tungsten-lit or uncalibrated camera)."""
    return images.copy() if strength == 0 else _gains(images, np.array([1 + 0.2 * strength, 1.0, 1 - 0.2 * strength]))


def brightness(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """An exposure up to 35% brighter (gain on every channel, saturating at 255)."""
    return images.copy() if strength == 0 else _gains(images, np.full(3, 1 + 0.35 * strength))


def contrast(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Contrast reduced by up to half around each image's own mean (a flat, hazy capture)."""
    if strength == 0:
        return images.copy()
    values = images.astype(np.float32)
    mean = values.mean(axis=(1, 2, 3), keepdims=True)
    return _to_uint8(mean + (values - mean) * (1 - 0.5 * strength))


def _torch_filter(images: np.ndarray, transform) -> np.ndarray:
    import torch

    x = torch.from_numpy(images.astype(np.float32)).permute(0, 3, 1, 2)
    return _to_uint8(transform(x).permute(0, 2, 3, 1).numpy())


def _per_image(images: np.ndarray, change: Callable) -> np.ndarray:
    """Apply a PIL operation to every image (grey images as mode L), back to uint8 (N, H, W, C)."""
    from PIL import Image

    out = np.empty_like(images)
    for i, image in enumerate(images):
        done = np.asarray(change(Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image)))
        out[i] = done[..., None] if done.ndim == 2 else done
    return out


def defocus(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """A Gaussian defocus of up to sigma 1.5 px at 64 px (scaled to the images' size): a lens out of focus."""
    from PIL import ImageFilter

    sigma = 1.5 * strength * images.shape[1] / REFERENCE_SIZE
    return images.copy() if sigma == 0 else _per_image(images, lambda image: image.filter(ImageFilter.GaussianBlur(sigma)))


def jpeg_quality(strength: float) -> int:
    return round(95 - 85 * strength)


def jpeg(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """JPEG compression at quality 95 down to 10 (an image sent through a messaging app or an old PACS)."""
    import io

    from PIL import Image

    def compress(image):
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=jpeg_quality(strength))
        return Image.open(buffer)

    return images.copy() if strength == 0 else _per_image(images, compress)


def resolution_factor(strength: float) -> float:
    return 1 + 3 * strength


def resolution(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """A camera of up to 4 times lower resolution: area down-sampling, then bilinear up to the input size."""
    import torch.nn.functional as F

    if strength == 0:
        return images.copy()
    h, w = images.shape[1:3]
    factor = resolution_factor(strength)
    small = (max(1, round(h / factor)), max(1, round(w / factor)))
    return _torch_filter(
        images, lambda x: F.interpolate(F.interpolate(x, size=small, mode="area"), size=(h, w), mode="bilinear", align_corners=False)
    )


def vignette(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Corners darkened by up to 60% (a dermatoscope's round field of view on a square crop)."""
    if strength == 0:
        return images.copy()
    h, w = images.shape[1:3]
    y, x = np.meshgrid(np.linspace(-1, 1, h), np.linspace(-1, 1, w), indexing="ij")
    falloff = 1 - 0.6 * strength * (x**2 + y**2) / 2
    return _to_uint8(images.astype(np.float32) * falloff[None, :, :, None].astype(np.float32))


def _hair_mask(rng: np.random.Generator, h: int, w: int, count: int, width: float) -> np.ndarray:
    """`count` curved hairs (quadratic Bezier curves across the image) as a boolean (h, w) mask; the first hairs a
    generator draws are the same whatever `count`, so more hairs cover the fewer ones' pixels and more."""
    mask = np.zeros((h, w), bool)
    ends = rng.uniform(0, 1, size=(MAX_HAIRS, 3, 2)) * np.array([h - 1, w - 1])
    t = np.linspace(0, 1, 4 * max(h, w))[:, None]
    for start, control, end in ends[:count]:
        points = (1 - t) ** 2 * start + 2 * (1 - t) * t * control + t**2 * end
        near = np.zeros((h, w), bool)
        for dy in np.arange(-np.ceil(width), np.ceil(width) + 1):
            for dx in np.arange(-np.ceil(width), np.ceil(width) + 1):
                if dy * dy + dx * dx <= width * width:
                    py, px = np.rint(points[:, 0] + dy).astype(int), np.rint(points[:, 1] + dx).astype(int)
                    keep = (py >= 0) & (py < h) & (px >= 0) & (px < w)
                    near[py[keep], px[keep]] = True
        mask |= near
    return mask


def hair(images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
    """Up to 10 dark hairs across each image (about 1 px wide at 64 px): the occluders dermoscopy often shows."""
    count = round(MAX_HAIRS * strength)
    out = images.copy()
    if count == 0:
        return out
    h, w, c = images.shape[1:]
    width = 0.6 * h / REFERENCE_SIZE
    colour = np.array(HAIR_COLOUR if c == 3 else [round(float(np.mean(HAIR_COLOUR)))], dtype=np.uint8)
    for i in range(len(images)):
        mask = _hair_mask(np.random.default_rng([seed, i]), h, w, count, width)
        out[i][mask] = colour
    return out


@dataclass(frozen=True)
class Shift:
    """A named shift, its transform, and what a strength means in the transform's own units."""

    name: str
    transform: Transform
    setting: Callable[[float], str]

    def __call__(self, images: np.ndarray, strength: float, seed: int = 0) -> np.ndarray:
        return self.transform(images, strength, seed)


SHIFTS: dict[str, Shift] = {
    s.name: s
    for s in (
        Shift("white_balance", white_balance, lambda s: f"red x{1 + 0.2 * s:.2f}, blue x{1 - 0.2 * s:.2f}"),
        Shift("brightness", brightness, lambda s: f"gain x{1 + 0.35 * s:.2f}"),
        Shift("contrast", contrast, lambda s: f"contrast x{1 - 0.5 * s:.2f}"),
        Shift("defocus", defocus, lambda s: f"sigma {1.5 * s:.2f} px at 64 px"),
        Shift("jpeg", jpeg, lambda s: f"quality {jpeg_quality(s)}" if s else "no compression"),
        Shift("resolution", resolution, lambda s: f"down x{resolution_factor(s):.2f}, then up"),
        Shift("vignette", vignette, lambda s: f"corners x{1 - 0.6 * s:.2f}"),
        Shift("hair", hair, lambda s: f"{round(MAX_HAIRS * s)} hairs"),
    )
}


def parse_shifts(names: str | list[str] | tuple[str, ...] | None, flag: str = "--shifts") -> list[Shift]:
    """Shift names (comma-separated or a list; None: all of them), each known."""
    if names is None:
        return list(SHIFTS.values())
    items = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if str(n).strip()]
    unknown = [n for n in items if n not in SHIFTS]
    if unknown or not items:
        raise UsageError(f"{flag} {', '.join(unknown) or '(none)'}: unknown shift; choose from {', '.join(SHIFTS)}")
    return [SHIFTS[n] for n in dict.fromkeys(items)]


def parse_strengths(values: str | list | tuple | None, flag: str = "--strengths") -> list[float]:
    """Strengths (comma-separated or a list; None: 0.25, 0.5, 1), each a number in (0, 1], sorted."""
    if values is None:
        return list(DEFAULT_STRENGTHS)
    items = [v for v in (values.split(",") if isinstance(values, str) else values) if str(v).strip()]
    try:
        numbers = sorted({float(v) for v in items})
    except (TypeError, ValueError):
        raise UsageError(f"{flag} {values!r}: strengths are numbers in (0, 1], e.g. 0.25,0.5,1") from None
    if not numbers or any(not 0 < v <= 1 for v in numbers):
        raise UsageError(f"{flag} {values!r}: strengths are numbers in (0, 1], e.g. 0.25,0.5,1")
    return numbers
