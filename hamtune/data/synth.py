"""Synthetic HAM10000-like dermoscopy images, written in the layouts of the public releases.

The default dataset goes through the same loaders as the real download, so metadata parsing,
lesion-grouped splits and JPEG decoding are exercised without the 3 GB release. Classes differ
as the ABCD rule says (asymmetry, border, colours, diameter), with overlap between them, and the
colours are matched per class to real HAM10000 photos.

As in real dermoscopy, the malignant classes carry more structure than the benign ones at the
same mean colour: melanoma a notched border, several colours and lopsided black globules; basal
cell carcinoma sharp arborizing vessels, blue-grey ovoid nests, white streaks and ulcer crusts;
actinic keratosis scale flakes, keratin crusts, a red strawberry pseudo-network and erosions.
A model of benign lesions therefore reconstructs them worse, so reconstruction-error anomaly
detection beats chance on the default dataset, without being trivial.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from tqdm import tqdm

from hamtune.data.labels import DX_CODES, HAM10000_COUNTS
from hamtune.errors import HamtuneError, UsageError
from hamtune.files import atomic_folder
from hamtune.gate import is_synthetic, output
from hamtune.workers import capped
from hamtune.workers import pool as worker_pool

VERSION = 2
MARKER = ".hamtune-synth.json"
METADATA_HEADER = ("lesion_id", "image_id", "dx", "dx_type", "age", "sex", "localization")
ISIC2018_COLUMNS = ("MEL", "NV", "BCC", "AKIEC", "BKL", "DF", "VASC")
RELEASE_ROW_ORDER = ("bkl", "nv", "df", "mel", "vasc", "bcc", "akiec")
FIRST_IMAGE, FIRST_TEST_IMAGE = 24306, 34524
INTERNAL_MAX = 240
CANVAS = 1.3
PHOTOS_PER_LESION = np.array([5514, 1423, 490, 34, 5, 4]) / 7470
DX_TYPES: dict[str, dict[str, float]] = {
    "nv": {"follow_up": 0.552, "histo": 0.373, "consensus": 0.075},
    "mel": {"histo": 1.0},
    "bkl": {"histo": 0.70, "consensus": 0.24, "confocal": 0.06},
    "bcc": {"histo": 1.0},
    "akiec": {"histo": 1.0},
    "vasc": {"consensus": 0.58, "histo": 0.42},
    "df": {"consensus": 0.48, "histo": 0.52},
}
MEAN_AGE = {"nv": 47, "mel": 61, "bkl": 64, "bcc": 67, "akiec": 67, "vasc": 50, "df": 52}
LOCALIZATIONS: dict[str, int] = {
    "back": 2192,
    "lower extremity": 2077,
    "trunk": 1404,
    "upper extremity": 1118,
    "abdomen": 1022,
    "face": 745,
    "chest": 407,
    "foot": 319,
    "unknown": 234,
    "neck": 168,
    "scalp": 128,
    "hand": 90,
    "ear": 56,
    "genital": 48,
    "acral": 7,
}
FAVOURITE_SITE = {"akiec": "face", "bcc": "face", "bkl": "face", "df": "lower extremity", "vasc": "trunk"}


def _rgb(*colours: tuple[int, int, int]) -> np.ndarray:
    return np.array(colours, np.float32)


SKIN = _rgb(
    (200, 160, 170),
    (188, 148, 172),
    (212, 166, 160),
    (196, 156, 178),
    (205, 168, 186),
    (170, 132, 145),
    (222, 192, 198),
    (196, 140, 145),
    (165, 140, 155),
    (210, 172, 168),
    (190, 150, 150),
    (228, 180, 180),
)
PALE_SKIN = _rgb((232, 202, 192))[0]
PALER = {"bcc": 0.4, "akiec": 0.4, "df": 0.3}
ERYTHEMA = np.array((0.05, -1.0, -0.7), np.float32)
HAIR = _rgb((40, 28, 25), (70, 50, 40), (25, 20, 22), (150, 115, 90))
BROWNS = _rgb((180, 125, 122), (145, 80, 75), (105, 52, 55), (66, 32, 42))
MEL = _rgb((168, 120, 105), (112, 72, 66), (56, 40, 46), (122, 120, 152), (192, 110, 122), (222, 208, 216))
TANS = _rgb((196, 160, 140), (160, 118, 98), (128, 98, 92), (92, 68, 62))
PINKS = _rgb((218, 168, 172), (200, 130, 136), (172, 98, 110))
DF_RING = _rgb((226, 150, 160), (196, 122, 118), (156, 96, 90))
PURPLES = _rgb((210, 70, 125), (180, 42, 78), (115, 38, 88), (66, 24, 46))
MILIA, PEARL, VESSEL, NEST = _rgb((236, 224, 214)), _rgb((238, 228, 230)), _rgb((150, 25, 45)), _rgb((72, 76, 104))
SCALE, SEPTA, SCAR = _rgb((238, 226, 210)), _rgb((224, 186, 198)), _rgb((240, 226, 228))
BLACK, CRUST, EROSION, KERATIN = _rgb((38, 28, 34)), _rgb((110, 42, 40)), _rgb((168, 62, 66)), _rgb((232, 214, 168))

Layer = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class _Grid:
    """Canvas coordinates in photo heights from the centre, so features keep their size at any resolution."""

    u: np.ndarray
    v: np.ndarray
    rows: int
    cols: int
    unit: float


def _grid(frame: tuple[int, int], margin: float) -> _Grid:
    cols, rows = round(frame[0] * margin), round(frame[1] * margin)
    u = ((np.arange(cols, dtype=np.float32) - cols / 2 + 0.5) / frame[1])[None, :]
    v = ((np.arange(rows, dtype=np.float32) - rows / 2 + 0.5) / frame[1])[:, None]
    return _Grid(u, v, rows, cols, float(frame[1]))


def _noise(rng: np.random.Generator, g: _Grid, scale: float) -> np.ndarray:
    """Smooth field of about unit variance with blobs `scale` photo heights wide: white noise, upsampled."""
    cells = g.unit * scale
    shape = (max(2, min(g.rows, round(g.rows / cells) + 1)), max(2, min(g.cols, round(g.cols / cells) + 1)))
    coarse = Image.fromarray(rng.standard_normal(shape).astype(np.float32) * 1.25, "F")
    return np.asarray(coarse.resize((g.cols, g.rows), Image.Resampling.BICUBIC if cells > 4 else Image.Resampling.BILINEAR))


def _smoothstep(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return x * x * (3 - 2 * x)


def _ramp(palette: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Colour at t in [0, 1] along a palette, to shade a lesion from light to dark."""
    stops = np.linspace(0, 1, len(palette))
    return np.stack([np.interp(t, stops, channel).astype(np.float32) for channel in palette.T], axis=-1)


def _outline(rng: np.random.Generator, g: _Grid, radius: float, asym: float, rough: float, soft: float) -> tuple[np.ndarray, np.ndarray]:
    """Lesion mask and distance (1 on the border): low harmonics make it asymmetric, high ones ragged."""
    cu, cv = (float(x) for x in rng.normal(0, 0.05, 2))
    c, s = math.cos(angle := rng.uniform(0, np.pi)), math.sin(angle)
    stretch = 1 + abs(rng.normal(0, 0.12 + asym))
    pu, pv = (g.u - cu) * c + (g.v - cv) * s, ((g.v - cv) * c - (g.u - cu) * s) * stretch
    k = np.arange(1, 13)[:, None]
    amp = np.where(k <= 3, asym, rough) * rng.uniform(0.3, 1.0, (12, 1)) / np.sqrt(k)
    theta = np.linspace(-np.pi, np.pi, 721)[None, :]
    bound = np.maximum(1 + (amp * np.cos(k * theta + rng.uniform(0, 2 * np.pi, (12, 1)))).sum(0), 0.4)
    index = ((np.arctan2(pv, pu) + np.pi) * (720 / (2 * np.pi))).astype(np.int32)
    d = np.hypot(pu, pv) / (radius * bound).astype(np.float32)[index]
    d += rough * (_noise(rng, g, radius * 0.3) + 0.4 * _noise(rng, g, 0.02))
    return _smoothstep((1 - d) / soft + 0.5), d


def _spots(rng: np.random.Generator, g: _Grid, size: float, level: float) -> np.ndarray:
    """Isolated blobs (dots, globules, nests, lacunae): where a noise field exceeds `level` sigmas."""
    return _smoothstep((_noise(rng, g, size) - level) / 0.5)


def _network(rng: np.random.Generator, g: _Grid, cell: float) -> np.ndarray:
    """Reticular lines, like a pigment network: the zero set of a noise field."""
    return np.exp(-((_noise(rng, g, cell) / 0.3) ** 2))


def _grain(rng: np.random.Generator, g: _Grid, amount: float) -> np.ndarray:
    """Fine multiplicative mottling: pigment looks granular under the dermoscope."""
    return (1 + amount * _noise(rng, g, 0.018))[..., None]


def _dabs(
    rng: np.random.Generator, g: _Grid, spread: float, count: int, size: tuple[float, float], elongation: float = 1.0, lopsided: float = 0.0
) -> np.ndarray:
    """Sharp-edged irregular blobs (globules, ovoid nests, scale flakes, crusts) scattered over a lesion.

    Centres fall within `spread` photo heights of the canvas centre, crowded to one side when
    `lopsided` > 0 (an asymmetric lesion); each blob is a jittered polygon `size` photo heights across.
    """
    mask = Image.new("L", (g.cols, g.rows), 0)
    draw, unit = ImageDraw.Draw(mask), g.unit
    side = rng.normal(0, 1, 2)
    side *= lopsided / max(float(np.hypot(*side)), 1e-6)
    corners = np.linspace(0, 2 * np.pi, 9)[:-1]
    for _ in range(count):
        r, a = spread * math.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        x = g.cols / 2 + (r * math.cos(a) + side[0] * spread) * unit
        y = g.rows / 2 + (r * math.sin(a) + side[1] * spread) * unit
        half = rng.uniform(*size) * unit / 2
        turn, stretch = rng.uniform(0, np.pi), 1 + abs(rng.normal(0, elongation - 1))
        radii = half * rng.uniform(0.6, 1.2, len(corners))
        pu, pv = radii * np.cos(corners) * stretch, radii * np.sin(corners)
        c, s = math.cos(turn), math.sin(turn)
        draw.polygon([(x + u * c - v * s, y + u * s + v * c) for u, v in zip(pu, pv)], fill=int(rng.uniform(150, 255)))
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(unit * 0.003)), np.float32) / 255


def _nv(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    atypical = bool(rng.random() < 0.2)
    radius = rng.uniform(0.1, 0.36) * (1.25 if atypical else 1.0)
    alpha, d = _outline(rng, g, radius, 0.04 + 0.12 * atypical, 0.03 + 0.06 * atypical, rng.uniform(0.2, 0.7))
    t = 0.2 + rng.uniform(0.3, 0.9) * (1 - 0.5 * d) + (0.1 + 0.15 * atypical) * _noise(rng, g, radius * 0.6)
    layers = [(alpha * rng.uniform(0.7, 0.95), _ramp(BROWNS, t) * _grain(rng, g, 0.06))]
    if rng.random() < 0.5:
        layers.append((alpha * _network(rng, g, 0.025) * rng.uniform(0.1, 0.3), BROWNS[3]))
    if rng.random() < 0.2:  # globular nevus: evenly spread brown globules
        globules = _dabs(rng, g, radius * 0.8, int(rng.integers(10, 30)), (0.015, 0.03))
        layers.append((alpha * globules * rng.uniform(0.4, 0.7), BROWNS[3]))
    return layers


def _mel(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    """Asymmetric, notched, several colours: dark and black globules, blue-grey veil, regression, red."""
    radius = rng.uniform(0.1, 0.22) if rng.random() < 0.25 else rng.uniform(0.22, 0.48)
    early = 0.5 if rng.random() < 0.3 else 1.0  # thin melanomas can look much like a nevus
    alpha, d = _outline(rng, g, radius, rng.uniform(0.12, 0.3) * early, rng.uniform(0.07, 0.14) * early, rng.uniform(0.2, 0.45))
    t = rng.uniform(0.2, 0.5) + 0.3 * (1 - d) + 0.35 * _noise(rng, g, radius * 0.4) + 0.25 * _noise(rng, g, 0.04)
    layers = [(alpha * rng.uniform(0.6, 0.85), _ramp(MEL[:3], t) * _grain(rng, g, 0.15))]
    for colour in rng.choice(np.arange(3, 6), size=rng.integers(0 if early < 1 else 1, 4), replace=False):
        patch = _smoothstep((_noise(rng, g, radius * 0.35) - 0.4) / 0.8) * rng.uniform(0.3, 0.65)
        layers.append((alpha * patch, MEL[colour]))
    atypical = _network(rng, g, rng.uniform(0.03, 0.05)) * _smoothstep(_noise(rng, g, radius * 0.5) + 0.5)
    layers.append((alpha * atypical * rng.uniform(0.3, 0.6), MEL[2]))
    side = rng.uniform(0.2, 0.5)
    globules = _dabs(rng, g, radius * 0.7, int(rng.integers(8, 30) * early), (0.012, 0.03), lopsided=side)
    return layers + [(alpha * globules * rng.uniform(0.7, 0.95), BLACK)]


def _bkl(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    radius = rng.uniform(0.18, 0.48)
    alpha, _ = _outline(rng, g, radius, rng.uniform(0.04, 0.15), rng.uniform(0.04, 0.12), rng.uniform(0.3, 0.9))
    t = rng.uniform(0.1, 0.8) + 0.2 * _noise(rng, g, 0.04) + 0.25 * _noise(rng, g, radius * 0.4)
    fissures = _network(rng, g, rng.uniform(0.04, 0.07)) * rng.uniform(0.1, 0.35)
    cysts = _dabs(rng, g, radius * 0.8, int(rng.integers(1, 10)), (0.015, 0.035))
    openings = _dabs(rng, g, radius * 0.8, int(rng.integers(1, 12)), (0.015, 0.035))
    return [
        (alpha * rng.uniform(0.5, 0.9), _ramp(TANS, t) * _grain(rng, g, 0.15)),
        (alpha * fissures, TANS[3]),
        (alpha * cysts * rng.uniform(0.4, 0.8), MILIA),
        (alpha * openings * rng.uniform(0.4, 0.8), TANS[3]),
    ]


def _bcc(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    """Pink and shiny, with sharp arborizing vessels, blue-grey ovoid nests and often an ulcer's crust."""
    radius = rng.uniform(0.15, 0.42)
    alpha, _ = _outline(rng, g, radius, rng.uniform(0.05, 0.2), rng.uniform(0.04, 0.1), rng.uniform(0.4, 0.9))
    pink = _ramp(PINKS, 0.45 + 0.3 * _noise(rng, g, radius * 0.5)) * _grain(rng, g, 0.12)
    shiny = _smoothstep((_noise(rng, g, radius * 0.3) - 0.2) / 1.2) * rng.uniform(0.35, 0.6)
    layers = [(alpha * rng.uniform(0.4, 0.75), pink), (alpha * shiny, PEARL)]
    layers.append((alpha * _vessels(rng, g, radius), VESSEL))
    streaks = _dabs(rng, g, radius * 0.8, int(rng.integers(3, 12)), (0.02, 0.05), elongation=3.0)
    layers.append((alpha * streaks * rng.uniform(0.6, 0.9), PEARL))
    if rng.random() < 0.85:
        nests = _dabs(rng, g, radius * 0.7, int(rng.integers(4, 16)), (0.04, 0.13), elongation=1.6)
        shade = np.clip(0.8 + 0.3 * _noise(rng, g, 0.02), 0.4, 1.0)
        layers.append((alpha * nests * shade * rng.uniform(0.7, 0.95), NEST))
    if rng.random() < 0.5:
        ulcer = _dabs(rng, g, radius * 0.3, int(rng.integers(1, 5)), (0.05, 0.12))
        layers.append((alpha * ulcer * rng.uniform(0.7, 0.95), CRUST))
    if rng.random() < 0.5:
        layers.append((alpha * _spots(rng, g, 0.015, 1.6) * 0.5, TANS[2]))
    return layers


def _vessels(rng: np.random.Generator, g: _Grid, radius: float) -> np.ndarray:
    """Arborizing vessels of basal cell carcinoma: sharp red lines that fork, thin out and fade."""
    mask = Image.new("L", (g.cols, g.rows), 0)
    draw, scale = ImageDraw.Draw(mask), g.unit * radius
    stack = [
        (
            g.cols / 2 + rng.normal(0, 0.4) * scale,
            g.rows / 2 + rng.normal(0, 0.4) * scale,
            rng.uniform(0, 2 * np.pi),
            0.9 * scale,
            255.0,
            g.unit * rng.uniform(0.01, 0.018),
        )
        for _ in range(rng.integers(2, 6))
    ]
    while stack:
        x, y, heading, length, strength, width = stack.pop()
        points = [(x, y)]
        for _ in range(6):
            heading += rng.normal(0, 0.35)
            x, y = x + math.cos(heading) * length / 6, y + math.sin(heading) * length / 6
            points.append((x, y))
        draw.line(points, fill=int(strength), width=max(1, round(width)), joint="curve")
        if length > 0.15 * scale:
            stack += [(x, y, heading + turn * rng.uniform(0.3, 0.9), length * 0.6, strength * 0.85, width * 0.65) for turn in (-1, 1)]
    return np.asarray(mask, np.float32) / 255 * rng.uniform(0.75, 0.95)


def _akiec(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    """Rough and scaly: white-yellow flakes, a red pseudo-network around follicles, small erosions."""
    radius = rng.uniform(0.2, 0.5)
    alpha, _ = _outline(rng, g, radius, rng.uniform(0.05, 0.2), rng.uniform(0.06, 0.15), rng.uniform(0.6, 1.2))
    red = _ramp(PINKS, 0.6 + 0.35 * _noise(rng, g, radius * 0.4)) * _grain(rng, g, 0.2)
    strawberry = _network(rng, g, rng.uniform(0.04, 0.07)) * rng.uniform(0.35, 0.6)
    flakes = _dabs(rng, g, radius * 0.9, int(rng.integers(15, 50)), (0.02, 0.05), elongation=1.8)
    crust = _dabs(rng, g, radius * 0.5, int(rng.integers(2, 7)), (0.05, 0.12), elongation=1.5, lopsided=0.4)
    layers = [
        (alpha * rng.uniform(0.4, 0.7), red),
        (alpha * strawberry, EROSION),
        (alpha * flakes * 0.9, SCALE),
        (alpha * crust * rng.uniform(0.6, 0.9), KERATIN),
    ]
    if rng.random() < 0.8:
        erosions = _dabs(rng, g, radius * 0.7, int(rng.integers(2, 8)), (0.03, 0.08))
        layers.append((alpha * erosions * rng.uniform(0.6, 0.9), CRUST))
    if rng.random() < 0.5:
        layers.append((alpha * _spots(rng, g, 0.02, 1.0) * 0.6, TANS[1]))
    return layers


def _vasc(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    radius = rng.uniform(0.08, 0.3)
    alpha, d = _outline(rng, g, radius, rng.uniform(0.02, 0.12), rng.uniform(0.02, 0.08), rng.uniform(0.1, 0.35))
    t = rng.uniform(0.0, 0.6) + 0.3 * (1 - d) + 0.25 * _noise(rng, g, radius * 0.4)
    return [
        (alpha * rng.uniform(0.75, 0.95), _ramp(PURPLES, t) * _grain(rng, g, 0.05)),
        (alpha * _network(rng, g, radius * 0.25) * 0.12, SEPTA),
        (alpha * _spots(rng, g, radius * 0.15, 1.2) * 0.4, PURPLES[3]),
    ]


def _df(rng: np.random.Generator, g: _Grid) -> list[Layer]:
    radius = rng.uniform(0.18, 0.38)
    alpha, d = _outline(rng, g, radius, rng.uniform(0.03, 0.1), rng.uniform(0.02, 0.06), rng.uniform(0.5, 1.0))
    ring = _ramp(DF_RING, rng.uniform(0.0, 0.8) + 0.15 * _noise(rng, g, radius * 0.5)) * _grain(rng, g, 0.15)
    scar = _smoothstep((rng.uniform(0.2, 0.5) - d) / 0.4 + 0.15 * _noise(rng, g, radius * 0.3))
    return [
        (alpha * rng.uniform(0.45, 0.8), ring),
        (alpha * _network(rng, g, 0.025) * 0.2, BROWNS[2]),
        (scar * rng.uniform(0.2, 0.8), SCAR),
    ]


PAINTERS: dict[str, Callable[[np.random.Generator, _Grid], list[Layer]]] = {
    "nv": _nv,
    "mel": _mel,
    "bkl": _bkl,
    "bcc": _bcc,
    "akiec": _akiec,
    "vasc": _vasc,
    "df": _df,
}


def _skin(rng: np.random.Generator, g: _Grid, dx: str) -> np.ndarray:
    """One patient's skin: a base tone, patchy redness, uneven shading, fine texture, some freckles."""
    a, b = rng.choice(len(SKIN), 2)
    base = SKIN[a] + (SKIN[b] - SKIN[a]) * rng.uniform(0, 0.5) + rng.normal(0, 6, 3)
    base = (base + (PALE_SKIN - base) * rng.uniform(0, PALER.get(dx, 0.0))).astype(np.float32)
    redness = rng.uniform(0.0, 0.1) * np.maximum(_noise(rng, g, 0.4), 0)
    shade = 1 + rng.uniform(0.01, 0.03) * _noise(rng, g, 0.15) + rng.uniform(0.03, 0.07) * _noise(rng, g, 1.5 / g.unit)
    skin = base * shade[..., None] * (1 + redness[..., None] * ERYTHEMA)
    if rng.random() < 0.3:
        skin += (TANS[1] - skin) * (_spots(rng, g, 0.015, 1.4) * rng.uniform(0.2, 0.5))[..., None]
    return skin


def _hairs(rng: np.random.Generator, g: _Grid, image: np.ndarray) -> np.ndarray:
    """Thin curved hairs across skin and lesion alike."""
    mask = Image.new("L", (g.cols, g.rows), 0)
    draw, s = ImageDraw.Draw(mask), np.linspace(0, 1, 12)[:, None]
    for _ in range(int(rng.geometric(0.2))):
        start, heading = rng.uniform(0, 1, 2) * (g.cols, g.rows), rng.uniform(0, 2 * np.pi)
        end = start + rng.uniform(0.2, 0.9) * g.unit * np.array((math.cos(heading), math.sin(heading)))
        bend = (start + end) / 2 + rng.normal(0, 0.08, 2) * g.unit
        curve = (1 - s) ** 2 * start + 2 * s * (1 - s) * bend + s**2 * end
        draw.line([tuple(p) for p in curve], fill=255, width=max(1, round(g.unit / 225)))
    alpha = np.asarray(mask, np.float32)[..., None] / 255 * rng.uniform(0.6, 0.95)
    return image * (1 - alpha) + HAIR[rng.integers(len(HAIR))] * alpha


def _canonical(dx: str, rng: np.random.Generator, frame: tuple[int, int], margin: float) -> Image.Image:
    """Lesion on skin, on a canvas `margin` times the photo so that re-posed photos stay filled."""
    g = _grid(frame, margin)
    image = _skin(rng, g, dx)
    for alpha, colour in PAINTERS[dx](rng, g):
        image += (colour - image) * alpha[..., None]
    if rng.random() < 0.15:
        image += (250 - image) * _spots(rng, g, 0.01, 2.6)[..., None] * 0.8
    if rng.random() < 0.3:
        image = _hairs(rng, g, image)
    return Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))


def _equipment(rng: np.random.Generator, dx: str, dx_type: str) -> tuple[np.ndarray, float | None]:
    """Colour matrix and vignette radius of the dermoscope used for one lesion.

    Follow-up photos (most nevi in the release) come from a clinic whose images are redder and more
    saturated; a real-data classifier can exploit that, so the synthetic data keep it.
    """
    if rng.random() < (0.95 if dx_type == "follow_up" else 0.5 if dx == "nv" else 0.08):
        saturation, gains = rng.uniform(1.4, 1.8), np.array((1.04, 0.9, 0.86)) * rng.uniform(0.97, 1.03, 3)
    else:
        saturation, gains = rng.uniform(0.9, 1.15), rng.uniform(0.97, 1.03, 3) * (1, 0.98, 1)
    vignette = float(rng.uniform(0.62, 0.8)) if rng.random() < 0.15 else None
    return gains[:, None] * (saturation * np.eye(3) + (1 - saturation) / 3), vignette


def _photograph(
    canvas: Image.Image,
    rng: np.random.Generator,
    frame: tuple[int, int],
    size: tuple[int, int],
    posed: bool,
    camera: np.ndarray,
    vignette: float | None,
) -> Image.Image:
    """One photo of the canvas: pose (for repeat photos), light, colour, vignette, final size."""
    (w, h), cx, cy = frame, canvas.width / 2, canvas.height / 2
    if posed:
        turn, zoom = math.radians(rng.uniform(-8, 8)), rng.uniform(0.97, 1.1)
        sx, sy = rng.uniform(-0.03, 0.03, 2) * h
        a, b = math.cos(turn) / zoom, math.sin(turn) / zoom
        affine = (a, -b, cx + sx - a * w / 2 + b * h / 2, b, a, cy + sy - b * w / 2 - a * h / 2)
        photo = canvas.transform(frame, Image.Transform.AFFINE, affine, resample=Image.Resampling.BILINEAR)
    else:
        photo = canvas.crop((round(cx - w / 2), round(cy - h / 2), round(cx - w / 2) + w, round(cy - h / 2) + h))
    u = (np.arange(w, dtype=np.float32)[None, :] - w / 2) / h
    v = (np.arange(h, dtype=np.float32)[:, None] - h / 2) / h
    colour = ((rng.uniform(0.9, 1.1) * (1 + rng.normal(0, 0.02, 3)))[:, None] * camera).T.astype(np.float32)
    slope_u, slope_v = (float(x) for x in rng.normal(0, 0.1, 2))
    light = 1 + slope_u * u + slope_v * v
    if vignette is not None:
        light = light * (1 - _smoothstep((np.hypot(u, v) - vignette) / 0.04))
    photo = Image.fromarray(np.clip(np.asarray(photo, np.float32) @ colour * light[..., None], 0, 255).astype(np.uint8))
    return photo if photo.size == size else photo.resize(size, Image.Resampling.BILINEAR)


def _frame(size: tuple[int, int]) -> tuple[int, int]:
    """Internal resolution: render small and upscale, which is much faster and looks the same at 64 px."""
    scale = min(1.0, INTERNAL_MAX / max(size))
    return max(8, round(size[0] * scale)), max(8, round(size[1] * scale))


def render_lesion(dx: str, rng: np.random.Generator, size: tuple[int, int]) -> np.ndarray:
    """One synthetic dermoscopy photo (H x W x 3 uint8) of class `dx`, for figures and tests."""
    if dx not in PAINTERS:
        raise HamtuneError(f"unknown dx {dx!r}; expected one of {', '.join(DX_CODES)}")
    size, frame = _check_size(size), _frame(size)
    camera, vignette = _equipment(rng, dx, str(rng.choice(list(DX_TYPES[dx]), p=list(DX_TYPES[dx].values()))))
    return np.asarray(_photograph(_canonical(dx, rng, frame, 1.0), rng, frame, size, False, camera, vignette))


def _render_lesion_photos(task: tuple) -> int:
    """Worker: every photo of one lesion, seeded by (seed, stream, lesion, photo) alone."""
    seed, stream, lesion, dx, dx_type, size, paths = task
    frame, rng = _frame(size), np.random.default_rng([seed, stream, 2, lesion])
    camera, vignette = _equipment(rng, dx, dx_type)
    canvas = _canonical(dx, rng, frame, CANVAS if len(paths) > 1 else 1.0)
    for shot, path in enumerate(paths):
        photo_rng = np.random.default_rng([seed, stream, 3, lesion, shot])
        _photograph(canvas, photo_rng, frame, size, shot > 0, camera, vignette).save(path, "JPEG", quality=90)
    return len(paths)


def _check_size(size: object) -> tuple[int, int]:
    ok = (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) and 16 <= s <= 4096 for s in size)
    )
    if not ok:
        raise UsageError(f"image_size must be (width, height) in pixels, each 16..4096; got {size!r}")
    assert isinstance(size, (tuple, list))
    return int(size[0]), int(size[1])


def _check_int(value: object, name: str, low: int, why: str) -> int:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < low:
        raise UsageError(f"{name} must be an integer >= {low}{why}; got {value!r}")
    return int(value)


def class_counts(n: int) -> dict[str, int]:
    """HAM10000 class prevalence as exact counts summing to n (largest remainder), each class at least 1."""
    total = sum(HAM10000_COUNTS.values())
    quota = np.array([HAM10000_COUNTS[dx] * n / total for dx in DX_CODES])
    counts = np.floor(quota).astype(int)
    counts[np.argsort(-(quota - counts), kind="stable")[: n - counts.sum()]] += 1
    for i in np.flatnonzero(counts == 0):
        counts[np.argmax(counts)] -= 1
        counts[i] = 1
    return dict(zip(DX_CODES, counts.tolist()))


def _lesion_sizes(count: int, rng: np.random.Generator) -> list[int]:
    """Photos per lesion drawn from the release's distribution, the last cut so they add up to `count`."""
    sizes = rng.choice(np.arange(1, 7), size=count, p=PHOTOS_PER_LESION)
    ends = np.cumsum(sizes)
    last = int(np.searchsorted(ends, count))
    sizes[last] -= ends[last] - count
    return sizes[: last + 1].tolist()


def _patient(dx: str, rng: np.random.Generator) -> tuple[str, str, str, str]:
    """dx_type, age, sex and site of one lesion, plausible for its class."""
    dx_type = str(rng.choice(list(DX_TYPES[dx]), p=list(DX_TYPES[dx].values())))
    age = "" if rng.random() < 0.006 else str(float(np.clip(5 * round(rng.normal(MEAN_AGE[dx], 15) / 5), 0, 85)))
    sex = str(rng.choice(["male", "female", "unknown"], p=[0.54, 0.455, 0.005]))
    weights = np.array([v * (4 if k == FAVOURITE_SITE.get(dx) else 1) for k, v in LOCALIZATIONS.items()], float)
    return dx_type, age, sex, str(rng.choice(list(LOCALIZATIONS), p=weights / weights.sum()))


@dataclass(frozen=True)
class _Lesion:
    index: int
    lesion_id: str
    dx: str
    patient: tuple[str, str, str, str]
    image_ids: tuple[str, ...]


def _plan(n: int, seed: int, stream: int, first_image: int) -> list[_Lesion]:
    """Lesions with their image ids and metadata; depends only on (n, seed, stream, first_image)."""
    rng = np.random.default_rng([seed, stream, 1])
    classes = [(dx, size) for dx, count in class_counts(n).items() for size in _lesion_sizes(count, rng)]
    classes = [classes[i] for i in rng.permutation(len(classes))]
    lesion_numbers = rng.choice(max(10_000, 2 * len(classes)), size=len(classes), replace=False)
    image_numbers = iter(first_image + rng.permutation(n))
    return [
        _Lesion(i, f"HAM_{number:07d}", dx, _patient(dx, rng), tuple(f"ISIC_{next(image_numbers):07d}" for _ in range(size)))
        for i, ((dx, size), number) in enumerate(zip(classes, lesion_numbers))
    ]


def _render(
    lesions: list[_Lesion],
    paths: dict[str, Path],
    seed: int,
    stream: int,
    size: tuple[int, int],
    workers: int | None,
    progress: bool,
    what: str,
) -> None:
    """Render all photos in worker processes; a photo's pixels depend only on its own seeds."""
    tasks = [(seed, stream, lesion.index, lesion.dx, lesion.patient[0], size, [paths[i] for i in lesion.image_ids]) for lesion in lesions]
    workers = capped(4 if workers is None else workers, -(-len(tasks) // 8))
    pool = worker_pool(workers) if workers > 1 else None  # workers die with this process
    try:
        done = pool.map(_render_lesion_photos, tasks, chunksize=8) if pool else map(_render_lesion_photos, tasks)
        with tqdm(total=len(paths), unit="img", desc=f"synthesizing {what}", disable=None if progress else True) as bar:
            for count in done:
                bar.update(count)
    finally:
        if pool:
            pool.shutdown(cancel_futures=True)


def _write_metadata(path: Path, lesions: list[_Lesion]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(METADATA_HEADER)
        for lesion in sorted(lesions, key=lambda lesion: (RELEASE_ROW_ORDER.index(lesion.dx), lesion.index)):
            writer.writerows((lesion.lesion_id, i, lesion.dx, *lesion.patient) for i in lesion.image_ids)


def _write_ground_truth(path: Path, lesions: list[_Lesion]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(("image",) + ISIC2018_COLUMNS)
        for image_id, dx in sorted((i, lesion.dx) for lesion in lesions for i in lesion.image_ids):
            writer.writerow([image_id] + ["1.0" if c.lower() == dx else "0.0" for c in ISIC2018_COLUMNS])


def _marker(out: Path) -> dict | None:
    try:
        return json.loads((out / MARKER).read_text())
    except (OSError, ValueError):
        return None


def _build(out: Path, params: dict, write: Callable[[Path], None]) -> Path:
    """Write into a hidden sibling folder, then rename it to `out`: a crash never leaves half a dataset.

    A synthetic dataset made with other parameters is replaced; any other non-empty `out` is refused.
    """
    output(out, flag="OUT", kind="folder", own=is_synthetic, existing="replace")
    if _marker(out) == params:
        return out
    with atomic_folder(out) as tmp:
        write(tmp)
        (tmp / MARKER).write_text(json.dumps(params))
    return out


def _check_common(seed: object, image_size: object, workers: object) -> tuple[int, tuple[int, int], int | None]:
    seed = _check_int(seed, "seed", 0, "")
    return seed, _check_size(image_size), None if workers is None else _check_int(workers, "workers", 1, "")


def synthesize_release(
    out: Path, n: int = 2000, seed: int = 0, image_size: tuple[int, int] = (600, 450), workers: int | None = None, progress: bool = True
) -> Path:
    """Write n synthetic images in the original HAM10000 layout (metadata CSV + two image folders).

    Returns `out` at once when it already holds this (n, seed, image_size). The same arguments
    give the same files whatever `workers` is.
    """
    n = _check_int(n, "n", len(DX_CODES), " (one image per class)")
    seed, size, workers = _check_common(seed, image_size, workers)
    params = {"layout": "HAM10000", "n": n, "seed": seed, "image_size": list(size), "version": VERSION}

    def write(tmp: Path) -> None:
        lesions = _plan(n, seed, 0, FIRST_IMAGE)
        half = FIRST_IMAGE + (n + 1) // 2
        parts = [tmp / "HAM10000_images_part_1", tmp / "HAM10000_images_part_2"]
        for part in parts:
            part.mkdir()
        ids = [i for lesion in lesions for i in lesion.image_ids]
        paths = {i: parts[int(i[5:]) >= half] / f"{i}.jpg" for i in ids}
        _write_metadata(tmp / "HAM10000_metadata.csv", lesions)
        _render(lesions, paths, seed, 0, size, workers, progress, "HAM10000")

    return _build(Path(out), params, write)


def synthesize_isic2018(
    out: Path,
    n_train: int,
    n_test: int,
    seed: int = 0,
    image_size: tuple[int, int] = (600, 450),
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write the ISIC 2018 Task 3 layout, whose training set is HAM10000 itself.

    Training images are exactly those of `synthesize_release(n=n_train, seed=seed)`, listed in a
    HAM10000_metadata.csv too; test images are other lesions, with ids after the training ids.
    """
    n_train = _check_int(n_train, "n_train", len(DX_CODES), " (one image per class)")
    n_test = _check_int(n_test, "n_test", len(DX_CODES), " (one image per class)")
    seed, size, workers = _check_common(seed, image_size, workers)
    params = {"layout": "ISIC2018", "n_train": n_train, "n_test": n_test, "seed": seed, "image_size": list(size), "version": VERSION}

    def write(tmp: Path) -> None:
        first_test = max(FIRST_TEST_IMAGE, FIRST_IMAGE + n_train)
        for split, n, stream, first in (("Training", n_train, 0, FIRST_IMAGE), ("Test", n_test, 1, first_test)):
            lesions = _plan(n, seed, stream, first)
            folder = tmp / f"ISIC2018_Task3_{split}_Input"
            folder.mkdir()
            _write_ground_truth(tmp / f"ISIC2018_Task3_{split}_GroundTruth.csv", lesions)
            if split == "Training":
                _write_metadata(tmp / "HAM10000_metadata.csv", lesions)
            paths = {i: folder / f"{i}.jpg" for lesion in lesions for i in lesion.image_ids}
            _render(lesions, paths, seed, stream, size, workers, progress, f"ISIC 2018 {split.lower()}")

    return _build(Path(out), params, write)
