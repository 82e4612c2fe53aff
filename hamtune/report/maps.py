"""The report's anomaly maps: for the chosen model, the highest- and lowest-scored test images of each
diagnosis with the map of its score (export/maps.py), where the trial's checkpoint and prepared data are
still there. The trial is exported to a temporary bundle first, so the maps use exactly what `hamtune
score --maps` uses (weights, score state, ensembles); the caption shows the map's mean beside the score.
Every map of the section is coloured on one scale fixed by the maps of validation normals (never test
images), so maps compare and a normal image's noise stays blue; where the prepared data's source still
holds the photographs, each map is also shown over its original photo, cropped as the preparation cropped."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from hamtune.data.images import Preprocess, decode, read_bytes
from hamtune.data.prepare import Prepared, load_prepared
from hamtune.data.release import index_images
from hamtune.data.sources import ARRAY_FORMS
from hamtune.errors import HamtuneError
from hamtune.escape import html as escape
from hamtune.export.bundle import is_synthetic, load_bundle, write_bundle
from hamtune.export.golden import validation_split
from hamtune.export.maps import Mapper, heat, overlay, render
from hamtune.report.images import data_uri
from hamtune.results.numbers import fmt

log = logging.getLogger(__name__)

NORMALS = 64  # validation normals (spread over the split) whose maps fix the section's colour scale
QUANTILES = (50, 99)  # the scale runs from their maps' median per-pixel value (blue) to their 99th percentile (red)
SCALE_RULE = "coloured from the validation normals' median (blue) to their 99th percentile (red), values beyond clipped"
DISPLAY = 256  # px a side of the map over the original photo


def validation_normals(row: pd.Series, bundle) -> np.ndarray | None:
    """Up to NORMALS normal images of the trial's own validation split, spread over it; None where its data is
    not where (or what) the results record."""
    config = getattr(bundle, "members", [bundle])[0].config
    split = validation_split(row, config)
    normals = split[0][split[1] == 0] if split is not None else []
    if not len(normals):
        return None
    return normals[np.unique(np.linspace(0, len(normals) - 1, min(NORMALS, len(normals))).round().astype(int))]


def normal_scale(maps: np.ndarray) -> tuple[float, float]:
    """The one colour scale of all maps: QUANTILES of the validation normals' per-pixel map values."""
    low, high = np.percentile(maps.astype(np.float64), QUANTILES)
    return float(low), float(high)


def colour_bar(scale: tuple[float, float], width: int = DISPLAY, height: int = 12) -> Image.Image:
    """The scale's colours from low (left) to high (right), as heat colours the maps."""
    return Image.fromarray(heat(np.repeat(np.linspace(*scale, width)[None], height, 0), scale))


def originals(data: Prepared, ids: list[str]) -> tuple[list[np.ndarray | None], str]:
    """Each image's original photo cropped by the preparation's own rule (data/images.decode) at DISPLAY px, None
    where it is not there; and why none are, where none are (array sources hold no photos)."""
    form = data.manifest.get("form")
    if form in ARRAY_FORMS:
        return [None] * len(ids), f"the {form} source holds arrays, not photographs"
    source = Path(str(data.manifest.get("source")))
    try:
        refs, _ = index_images(source if source.is_dir() else source.parent)
    except (OSError, HamtuneError) as exc:
        return [None] * len(ids), f"{source} cannot be read ({exc})"
    pre = Preprocess(max(DISPLAY, data.preprocess.size), data.preprocess.crop, data.preprocess.channels)
    photos: list[np.ndarray | None] = []
    for image_id in ids:
        try:
            photos.append(decode(read_bytes(refs[image_id]), pre)[0])
        except Exception:  # a photo gone or broken since preparing costs its panel, never the report
            photos.append(None)
    return photos, "" if any(p is not None for p in photos) else f"{source} no longer holds these images"


def extremes(scores: pd.DataFrame) -> pd.DataFrame:
    """Per diagnosis, the highest- then the lowest-scored image (one row when a diagnosis has one image)."""
    rows = []
    for _, group in scores.sort_values("score", ascending=False, kind="stable").groupby("dx", sort=True):
        rows.append(group.iloc[[0, -1]] if len(group) > 1 else group)
    return pd.concat(rows).assign(which=lambda t: np.where(t.duplicated("dx"), "lowest", "highest"))


def chosen_maps(row: pd.Series, scores: pd.DataFrame, metric: str) -> str:
    """The section's HTML for one chosen trial; a note instead when its checkpoint, data or score does not allow it."""
    mine = scores[(scores["sweep"] == row["sweep"]) & (scores["trial_id"] == row["trial_id"])]
    title = f"{row['sweep']}/{row['trial_id']}"
    try:
        if not len(mine):
            raise HamtuneError(f"trial {title} has no per-image test scores")
        data = load_prepared(Path(str(row.get("data_path"))))
        where = pd.Series(np.arange(len(data.meta)), index=data.meta["image_id"].astype(str).to_numpy())
        mine = mine[mine["image_id"].astype(str).isin(where.index)]
        if not len(mine):
            raise HamtuneError(f"{data.path}: holds none of trial {title}'s test images (scored on another test set)")
        shown = extremes(mine)
        with tempfile.TemporaryDirectory(prefix="hamtune-maps-") as folder:
            bundle = load_bundle(write_bundle(row, Path(folder) / "bundle", metric, 1))
            images = data.images[where.loc[shown["image_id"].astype(str)].to_numpy()]
            mapper = Mapper(bundle, "cpu")
            maps, recons = mapper(images)
            normals = validation_normals(row, bundle)
            scale = normal_scale(mapper(normals)[0]) if normals is not None else None
    except (HamtuneError, OSError) as exc:  # a report is still written without this section
        log.debug("no anomaly maps for %s: %s", title, exc)
        return f'<p class="note">No anomaly maps for {escape(title)}: {escape(str(exc))}</p>'
    photos, missing = originals(data, shown["image_id"].astype(str).tolist())
    figures = []
    for item, image, recon, values, photo in zip(shown.itertuples(), images, recons, maps, photos):
        caption = (
            f"{item.dx}, {item.which} score: {item.image_id}, score {fmt(item.score)} "
            f"(map mean {fmt(float(values.astype(np.float64).mean()))})"
        )
        over = (
            ""
            if photo is None
            else (
                f' <img alt="{escape(caption)}: the map over the original photo" '
                f'src="{data_uri(Image.fromarray(overlay(photo, values, scale)))}">'
            )
        )
        figures.append(
            f'<figure><img alt="{escape(caption)}" src="{data_uri(render(image, recon, values, scale))}">{over}'
            f"<figcaption>{escape(caption)}</figcaption></figure>"
        )
    score = row.get("score") if isinstance(row.get("score"), str) else "its members' scores, standardised and averaged"
    note = (
        f"Chosen model {title} (score: {score}): per diagnosis its "
        "highest- and lowest-scored test images; each shows the image as the model saw it, its reconstruction and "
        "the map of its score over the image"
    )
    note += (
        ", then the map over the original photo (cropped as the data was prepared)."
        if not missing
        else f"; not over the original photo: {missing}."
    )
    if scale is None:
        note += (
            " Each map is coloured over its own range (as hamtune score --maps colours them): the trial's "
            "validation images are not where its results record them, so no common scale was fixed."
        )
        bar = ""
    else:
        assert normals is not None  # the scale is fixed from them
        note += f" All maps share one scale, {SCALE_RULE} ({len(normals)} images):"
        bar = (
            f'<p class="note">{escape(fmt(scale[0]))} <img alt="colour bar from {escape(fmt(scale[0]))} to '
            f'{escape(fmt(scale[1]))}" src="{data_uri(colour_bar(scale))}"> {escape(fmt(scale[1]))}</p>'
        )
    if not is_synthetic(data.manifest):  # real photographs are shown: say whose, and under which licence
        note += (
            " The images are the data's own (HAM10000 and ISIC archive images: CC BY-NC 4.0, Tschandl et al., "
            "Sci. Data 5, 180161, 2018), shown reduced to the model's input size and to "
            f"{DISPLAY} px under the maps over the originals."
        )
    return f'<p class="note">{escape(note)}</p>' + bar + "".join(figures)
