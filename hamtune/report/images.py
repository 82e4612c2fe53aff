"""Image grids for the report: uint8 NHWC arrays tiled into one PNG, inlined as a data URI."""

from __future__ import annotations

import base64
import io

import numpy as np
from PIL import Image

TARGET_TILE = 84  # px per image on the page, whatever the training resolution
GAP = 2


def tile(rows: list[np.ndarray]) -> Image.Image:
    """Rows of images (each N x H x W x C, C = 1 or 3) as one white-gapped grid, upscaled without smoothing."""
    rows = [np.asarray(r) for r in rows if r is not None and len(r)]
    height, width = rows[0].shape[1:3]
    scale = max(1, TARGET_TILE // max(height, width))
    columns = max(len(r) for r in rows)
    cell_h, cell_w = height * scale + GAP, width * scale + GAP
    canvas = np.full((len(rows) * cell_h + GAP, columns * cell_w + GAP, 3), 255, dtype=np.uint8)
    for i, row in enumerate(rows):
        for j, image in enumerate(row):
            image = image.astype(np.uint8)
            if image.ndim == 2:
                image = image[..., None]
            if image.shape[-1] == 1:
                image = np.repeat(image, 3, axis=-1)
            big = image.repeat(scale, axis=0).repeat(scale, axis=1)
            top, left = GAP + i * cell_h, GAP + j * cell_w
            canvas[top : top + big.shape[0], left : left + big.shape[1]] = big[..., :3]
    return Image.fromarray(canvas)


def data_uri(image: Image.Image) -> str:
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
