"""The report's stress-test section: each results folder's stress.parquet (`hamtune stress`) as one figure of AUROC
against shift strength and a table of the deep models and the floor they are compared with."""

from __future__ import annotations

import html
import logging
from collections.abc import Callable

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from hamtune.errors import HamtuneError
from hamtune.export.stress import FLOOR, UNSHIFTED, headline_rows, lead_verdict
from hamtune.report.figures import HEIGHT, _layout
from hamtune.report.load import Sweep
from hamtune.results.intervals import Interval, shown, signed
from hamtune.results.layout import STRESS
from hamtune.results.store import read_parquet

log = logging.getLogger(__name__)
COLUMNS = 4
NOTE = (
    "Each model scores the test images its row was measured on, shifted as another clinic's camera might shift "
    "them (strength 1 is the strongest setting; the shifts act on the images at the model's input size, as the "
    "prepared cache holds them). AUROC with its 95% stratified bootstrap interval; 'change' is the paired "
    "difference to the same model unshifted, 'vs floor' the paired difference to the floor under the same shift. "
    "Other floor rows are in stress.parquet."
)


def load_stress(sweeps: list[Sweep]) -> pd.DataFrame:
    """Every folder's stress.parquet, one frame; a damaged file costs its rows, not the report."""
    parts = []
    for sweep in sweeps:
        path = sweep.directory / STRESS
        if not path.exists():
            continue
        try:
            parts.append(read_parquet(path).assign(folder=sweep.name))
        except HamtuneError as exc:
            log.warning("%s; the stress test of %s is left out", exc, sweep.name)
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def figure(frame: pd.DataFrame) -> go.Figure | None:
    """AUROC (with its interval) against strength, one panel per shift, one line per model; strength 0 is unshifted."""
    rows = headline_rows(frame)
    shifts = [s for s in dict.fromkeys(rows["shift"]) if s != UNSHIFTED]
    if not shifts:
        return None
    lines = max(1, -(-len(shifts) // COLUMNS))
    fig = make_subplots(rows=lines, cols=min(COLUMNS, len(shifts)), subplot_titles=[html.escape(s) for s in shifts], shared_yaxes=True)
    for i, ((sweep, trial, part), block) in enumerate(rows.groupby(["sweep", "trial_id", "part"], sort=False)):
        base = block[block["shift"] == UNSHIFTED]
        name = html.escape(f"{part}: {block['model'].iloc[0]}")
        for j, shift in enumerate(shifts):
            points = pd.concat([base, block[block["shift"] == shift]]).sort_values("strength")
            fig.add_trace(
                go.Scatter(
                    x=points["strength"],
                    y=points["auroc"],
                    mode="lines+markers",
                    name=name,
                    legendgroup=f"{sweep}/{trial}",
                    showlegend=j == 0,
                    line=dict(color=f"hsl({(i * 67) % 360},60%,45%)", dash="dot" if part == FLOOR else "solid"),
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=points["auroc_high"] - points["auroc"],
                        arrayminus=points["auroc"] - points["auroc_low"],
                    ),
                    hovertext=[html.escape(str(s)) for s in points["setting"]],
                    hoverinfo="text+y",
                ),
                row=j // COLUMNS + 1,
                col=j % COLUMNS + 1,
            )
    fig.update_xaxes(title_text="strength")
    fig.update_yaxes(title_text="test AUROC", col=1)
    return _layout(fig, "Test AUROC under acquisition shift (95% intervals)", height=max(HEIGHT, 320 * lines))


def _interval(row: pd.Series, column: str) -> str:
    if pd.isna(row[column]):
        return ""
    return signed(Interval(row[column], row[f"{column}_low"], row[f"{column}_high"]))


def display_table(frame: pd.DataFrame) -> pd.DataFrame:
    """One model's rows together (the delivered model first), each in the order it was measured."""
    rows = headline_rows(frame)
    order = rows.groupby(["sweep", "trial_id"], sort=False).ngroup()
    rows = rows.iloc[order.to_numpy().argsort(kind="stable")]
    return pd.DataFrame(
        {
            "model": [f"{p}: {m}" for p, m in zip(rows["part"], rows["model"])],
            "shift": rows["shift"],
            "strength": [f"{v:g}" for v in rows["strength"]],
            "setting": rows["setting"],
            "AUROC (95% CI)": [shown(v, lo, hi) for v, lo, hi in zip(rows["auroc"], rows["auroc_low"], rows["auroc_high"])],
            "change from unshifted": [_interval(r, "change") for _, r in rows.iterrows()],
            "vs floor": [_interval(r, "vs_floor") for _, r in rows.iterrows()],
        },
        dtype=object,
    )


def section(sweeps: list[Sweep], embed: Callable[[go.Figure | None], str], table: Callable[[pd.DataFrame], str]) -> str:
    """The section's HTML ('' where no folder was stress-tested)."""
    frame = load_stress(sweeps)
    if not len(frame):
        return ""
    parts = []
    for folder, block in frame.groupby("folder", sort=False):
        first = block.iloc[0]
        heading = (
            f"{folder}: {int(first['images'])} test images ({int(first['anomalous'])} anomalous) of "
            f"{first['test_key']}, input {first['input']}"
        )
        verdict = lead_verdict(block)
        parts.append(
            f"<h3>{html.escape(heading)}</h3>"
            + (f"<p>{html.escape(verdict)}</p>" if verdict else "")
            + embed(figure(block))
            + table(display_table(block))
        )
    return f'<p class="note">{html.escape(NOTE)}</p>' + "".join(parts)
