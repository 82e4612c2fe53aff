"""The report's anomaly maps: for the chosen model, the highest- and lowest-scored test images of each
diagnosis with the map of its score (export/maps.py), where the trial's checkpoint and prepared data are
still there. The trial is exported to a temporary bundle first, so the maps use exactly what `hamtune
score --maps` uses (weights, score state, ensembles); the caption shows the map's mean beside the score."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.data.prepare import load_prepared
from hamtune.errors import HamtuneError
from hamtune.escape import html as escape
from hamtune.export.bundle import is_synthetic, load_bundle, write_bundle
from hamtune.export.maps import Mapper, render
from hamtune.report.images import data_uri
from hamtune.results.numbers import fmt

log = logging.getLogger(__name__)


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
            maps, recons = Mapper(bundle, "cpu")(images)
    except (HamtuneError, OSError) as exc:  # a report is still written without this section
        log.debug("no anomaly maps for %s: %s", title, exc)
        return f'<p class="note">No anomaly maps for {escape(title)}: {escape(str(exc))}</p>'
    figures = []
    for item, image, recon, values in zip(shown.itertuples(), images, recons, maps):
        caption = (f"{item.dx}, {item.which} score: {item.image_id}, score {fmt(item.score)} "
                   f"(map mean {fmt(float(values.astype(np.float64).mean()))})")
        figures.append(f'<figure><img alt="{escape(caption)}" src="{data_uri(render(image, recon, values))}">'
                       f"<figcaption>{escape(caption)}</figcaption></figure>")
    score = row.get("score") if isinstance(row.get("score"), str) else "its members' scores, standardised and averaged"
    note = (f"Chosen model {title} (score: {score}): per diagnosis its "
            "highest- and lowest-scored test images; each shows the image as the model saw it, its reconstruction and "
            "the map of its score over the image (coloured over that map's own range; hamtune score --maps writes "
            "the same).")
    if not is_synthetic(data.manifest):  # real photographs are shown: say whose, and under which licence
        note += (" The images are the data's own (HAM10000 and ISIC archive images: CC BY-NC 4.0, Tschandl et al., "
                 "Sci. Data 5, 180161, 2018), shown reduced to the model's input size.")
    return f'<p class="note">{escape(note)}</p>' + "".join(figures)
