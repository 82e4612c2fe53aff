"""Anomaly maps: where in an image the model's own score comes from, one value per pixel, such that the
map's mean IS the image's score (as `hamtune score` writes it).

- mse: the squared error of the reconstruction, averaged over channels.
- ssim: 1 - the local SSIM of hamtune.train.metrics (the map the score averages). SSIM exists only where
  its window fits (the central (H-w+1)x(W-w+1), w = 11 at 28 px and above); the (w-1)/2-pixel border is
  filled with the map's own mean, so the map has the model's resolution and keeps its mean.
- gms: 1 - the local gradient-magnitude similarity (Prewitt 3x3, so a 1-pixel border, filled the same way).
- several parts: each part's map standardised with the score's own centre and scale (score.pt), summed.
- an ensemble: its members' maps standardised as the ensemble standardises their scores, averaged.
With test-time flips (`tta`) each view's map is flipped back and the views averaged, as the score is.
Scores with a `latent` or `elbo` part are one number per image and have no map: refused before anything runs.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, cast

import numpy as np
import torch
from PIL import Image

from hamtune.errors import HamtuneError
from hamtune.gate import mark
from hamtune.models import Autoencoder
from hamtune.train import metrics
from hamtune.train.config import TrainConfig, score_parts
from hamtune.train.evaluate import FLIPS
from hamtune.train.scores import PARTS
from hamtune.train.tensors import to_input, to_unit

if TYPE_CHECKING:
    from hamtune.export.bundle import Bundle, EnsembleBundle

MAP_PARTS = tuple(name for name, part in PARTS.items() if part.pixel_map)
PANEL = 128  # each PNG panel is scaled up (nearest) to at least this many pixels
HEAT = np.array([[0, 0, 131], [0, 200, 255], [255, 220, 0], [180, 0, 0]], dtype=np.float64)  # low -> high


def _members(bundle: Bundle | EnsembleBundle) -> list[Bundle]:
    return getattr(bundle, "members", None) or [bundle]


def check_mappable(bundle: Bundle | EnsembleBundle) -> None:
    """Refuse, in one line and before anything is scored or written, a score that is not a mean over pixels."""
    for member in _members(bundle):
        flat = [p for p in score_parts(member.config.score) if p not in MAP_PARTS]
        if flat:
            raise HamtuneError(
                f"{member.path}: score {member.config.score} has no anomaly map (its {', '.join(flat)} part is "
                "one number per image, not a mean over pixels); --maps needs a score made of "
                f"{', '.join(MAP_PARTS)} (nothing was written)"
            )


def _full_size(part: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """A valid-region map (N,h,w) centred in (N,H,W), the border filled with each map's mean (which keeps the mean)."""
    n, h, w = part.shape
    out = part.mean((1, 2), keepdim=True).expand(n, height, width).clone()
    top, left = (height - h) // 2, (width - w) // 2
    out[:, top : top + h, left : left + w] = part
    return out


@torch.no_grad()
def part_maps(model: Autoencoder, images: torch.Tensor, config: TrainConfig) -> tuple[dict[str, torch.Tensor], torch.Tensor]:
    """The maps (N,H,W) of the score's parts for uint8 (N,H,W,C) images, averaged over the score's views as
    score_images averages them, and the reconstruction of the image itself in [0,1] (N,C,H,W)."""
    original = to_input(images, config.input_range)
    views = FLIPS if config.tta else FLIPS[:1]
    maps: dict[str, torch.Tensor] = {}
    shown = None
    for dims in views:
        x = original.flip(dims) if dims else original
        recon = model(x)[0]
        add_view(maps, view_maps(x, recon, config.input_range, score_parts(config.score)), dims, len(views))
        if shown is None:
            shown = to_unit(recon, config.input_range).clamp(0, 1)
    assert shown is not None  # views is never empty
    return maps, shown


# Each map part's map (N,H,W) from a reconstruction and its image on [0, 1] (N,C,H,W).
MAKERS: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "mse": lambda recon, x: (recon - x).pow(2).mean(1),
    "ssim": lambda recon, x: _full_size(1.0 - metrics.ssim_map(recon, x).mean(1), *x.shape[-2:]),
    "gms": lambda recon, x: _full_size(1.0 - metrics.gms_map(recon, x), *x.shape[-2:]),
}


def view_maps(x: torch.Tensor, recon: torch.Tensor, input_range: str, parts: tuple[str, ...] = MAP_PARTS) -> dict[str, torch.Tensor]:
    """The maps (N,H,W) of `parts` (a score's parts: only what it combines is computed) for one view and its
    reconstruction (model space); also the body of the exported score graph's map output."""
    unit_x, unit_recon = to_unit(x, input_range), to_unit(recon, input_range)
    return {name: MAKERS[name](unit_recon, unit_x) for name in parts if name in MAKERS}


def add_view(maps: dict[str, torch.Tensor], view: dict[str, torch.Tensor], dims: tuple[int, ...], views: int) -> None:
    """Add one view's maps, flipped back, to the running mean over `views` views (as score_batch averages terms)."""
    for key, value in view.items():
        maps[key] = maps.get(key, 0) + (value.flip(dims) if dims else value).float() / views


def score_map(maps: dict[str, torch.Tensor], score: str, center: dict[str, float], scale: dict[str, float]) -> torch.Tensor:
    """The score's map from its parts' maps: one part as it is, several standardised and summed (as anomaly_score)."""
    parts = score_parts(score)
    if len(parts) == 1:
        return maps[parts[0]]
    return cast(torch.Tensor, sum((maps[p] - center[p]) / scale[p] for p in parts))  # two parts or more: never sum's 0


class Mapper:
    """The anomaly maps and reconstructions of uint8 (N,H,W,C) images under a bundle (checked with check_mappable)."""

    def __init__(self, bundle: Bundle | EnsembleBundle, device: torch.device | str):
        check_mappable(bundle)
        self.bundle, self.device = bundle, device
        self.members = [(m, m.model(device), m.score_state()) for m in _members(bundle)]

    def __call__(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Maps (N,H,W) float32 and reconstructions (N,H,W,C) uint8 (an ensemble: its members' mean reconstruction)."""
        tensor = torch.from_numpy(np.array(images, dtype=np.uint8)).to(self.device)
        maps, recons = [], []
        for member, model, state in self.members:
            size = member.config.eval_batch_size
            chunks = [part_maps(model, tensor[s : s + size], member.config) for s in range(0, len(tensor), size)]
            parts = {key: torch.cat([c[0][key] for c in chunks]) for key in chunks[0][0]}
            maps.append(score_map(parts, member.config.score, state.center, state.scale))
            recons.append(torch.cat([c[1] for c in chunks]))
        if hasattr(self.bundle, "members"):  # as bundle.combine standardises the members' scores
            how = self.bundle.info["members"]
            maps = [sum((m - h["center"]) / h["scale"] for m, h in zip(maps, how)) / len(maps)]
        recon = (cast(torch.Tensor, sum(recons)) / len(recons)).mul(255).round().to(torch.uint8).permute(0, 2, 3, 1)
        return maps[0].cpu().numpy().astype(np.float32), recon.cpu().numpy()


def heat(values: np.ndarray, scale: tuple[float, float] | None = None) -> np.ndarray:
    """(H,W) floats -> (H,W,3) uint8 colours, blue at `scale`'s low to red at its high (values beyond are clipped);
    without a scale, stretched over this map's own range (`score --maps` has no validation set to fix one)."""
    low, high = scale if scale is not None else (float(values.min()), float(values.max()))
    unit = np.clip((values - low) / (high - low), 0, 1) if high > low else np.zeros_like(values)
    stops = np.linspace(0, 1, len(HEAT))
    return np.stack([np.interp(unit, stops, HEAT[:, c]) for c in range(3)], -1).round().astype(np.uint8)


def _rgb(a: np.ndarray) -> np.ndarray:
    return np.repeat(a, 3, -1) if a.shape[-1] == 1 else a


def overlay(image: np.ndarray, values: np.ndarray, scale: tuple[float, float] | None = None) -> np.ndarray:
    """The map as heat over an image of any size: the map resized to it bilinearly, then blended."""
    image = _rgb(image)
    if values.shape != image.shape[:2]:
        size = (image.shape[1], image.shape[0])
        values = np.asarray(Image.fromarray(values.astype(np.float32), "F").resize(size, Image.Resampling.BILINEAR))
    return (0.45 * image + 0.55 * heat(values, scale)).round().astype(np.uint8)


def render(image: np.ndarray, recon: np.ndarray, values: np.ndarray, scale: tuple[float, float] | None = None) -> Image.Image:
    """Three panels side by side: the image as the model saw it, its reconstruction, the map over the image."""
    strip = Image.fromarray(np.concatenate([_rgb(image), _rgb(recon), overlay(image, values, scale)], axis=1))
    factor = max(1, -(-PANEL // image.shape[0]))
    return strip.resize((strip.width * factor, strip.height * factor), Image.Resampling.NEAREST)


class MapWriter:
    """Writes `<name>.npy` (the raw map) and `<name>.png` (the panels, each map coloured over its own range: scoring
    has no validation normals to fix one scale, so PNGs do not compare; the .npy values do) per image into one
    folder; a name seen before gets a `-2`, `-3`... suffix so images of the same file name in different folders
    keep their maps."""

    def __init__(self, bundle: Bundle | EnsembleBundle, folder: Path, device: torch.device | str):
        self.mapper, self.folder, self.used = Mapper(bundle, device), Path(folder), set[str]()
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            mark(self.folder)
        except OSError as exc:
            raise HamtuneError(f"--maps {folder}: cannot create the folder ({exc.strerror or exc})") from None

    def _name(self, image: str) -> str:
        stem = Path(image).stem or "image"
        name, k = stem, 1
        while name in self.used:
            k += 1
            name = f"{stem}-{k}"
        self.used.add(name)
        return name

    def __call__(self, images: np.ndarray, names: list[str]) -> list[str]:
        """Map and write a batch of images; the file names used (without suffix), in order."""
        maps, recons = self.mapper(images)
        written = []
        for image, recon, values, name in zip(images, recons, maps, names):
            stem = self._name(name)
            try:
                np.save(self.folder / f"{stem}.npy", values)
                render(image, recon, values).save(self.folder / f"{stem}.png")
            except OSError as exc:
                raise HamtuneError(f"--maps {self.folder}: cannot write the map of {name} ({exc.strerror or exc})") from None
            written.append(stem)
        return written
