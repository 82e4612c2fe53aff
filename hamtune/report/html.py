"""The HTML report: one self-contained file (plotly.js inlined once, images as data URIs) that opens offline.

Every string that comes from results is escaped with hamtune.escape.html here or in figures.py; Plotly's JSON
already escapes '<', so nothing from a results file can become markup or script.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import plotly.graph_objects as go

import hamtune
from hamtune.errors import HamtuneError
from hamtune.escape import html as escape
from hamtune.files import atomic_file
from hamtune.report import figures
from hamtune.report.external import section as external_section
from hamtune.report.images import data_uri, tile
from hamtune.report.importance import Importance, param_importance
from hamtune.report.load import Sweep, combine
from hamtune.report.stress import section as stress_section
from hamtune.report.summary import how_to_read, verdict_html
from hamtune.report.tables import COLUMNS, UNRANKED_COLUMNS, columns_for, display, seed_tables, seeds_heading
from hamtune.results import configurations
from hamtune.results.chosen import Chosen, chosen_in, chosen_of_folders
from hamtune.results.external import claim_basis, side_by_side
from hamtune.results.intervals import comparisons, ranking_with_intervals
from hamtune.results.numbers import fmt
from hamtune.results.rank import Metric, Ranking, best_per_group, is_deep, search_trials, verdict
from hamtune.results.reproduction import SPREAD, summarise
from hamtune.results.roles import Role, role_of
from hamtune.results.store import load_samples

log = logging.getLogger(__name__)

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True}
EXPECTED_BEST = (
    "Expected best validation objective of n trials drawn at random from each sweep's own ranked trials "
    "(completed, and stopped early as the scheduler returned them), by the closed form from their empirical "
    "distribution (Dodge et al. 2019, 'Show your work'), with a band of +- one standard deviation. Where the "
    "curve still rises at the sweep's size, more trials would likely find a better configuration."
)
MAX_IMAGES = 8

STYLE = """
body{font-family:system-ui,-apple-system,Segoe UI,Roboto,sans-serif;margin:0 auto;max-width:1360px;padding:16px 24px;color:#222}
h1{margin-bottom:0} .meta{color:#666;margin-top:4px} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:36px}
table{border-collapse:collapse;font-size:13px;margin:8px 0 16px}
th,td{padding:3px 8px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}
th{background:#f4f4f4;cursor:pointer;position:sticky;top:0}
th[data-order=asc]::after{content:" \\25B2"} th[data-order=desc]::after{content:" \\25BC"}
td.text,th.text{text-align:left} tr.baseline td{background:#fff6d5} tr.classical td{background:#e8f1fb}
.scroll{overflow-x:auto} .summary{background:#f7faf7;border:1px solid #cfe3cf;border-radius:6px;padding:4px 16px}
.bad{color:#b15900} .flag{color:#b00020;font-weight:bold} .note{color:#555;font-style:italic}
.figure{margin:12px 0 24px} figure{display:inline-block;margin:8px 24px 16px 0} figcaption{font-size:13px;color:#444;max-width:760px}
"""

SORT_SCRIPT = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0], index = th.cellIndex;
    var ascending = th.dataset.order !== "asc";
    table.querySelectorAll("th").forEach(function (h) { delete h.dataset.order; });
    th.dataset.order = ascending ? "asc" : "desc";
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = a.cells[index].textContent.trim(), y = b.cells[index].textContent.trim();
      if (x === "" || y === "") { return (x === "") - (y === ""); }
      var nx = Number(x), ny = Number(y);
      var order = isNaN(nx) || isNaN(ny) ? x.localeCompare(y) : nx - ny;
      return ascending ? order : -order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
  });
});
"""


class Embedder:
    """Embeds figures in page order; the first carries plotly.js, so it is in the file exactly once."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, figure: go.Figure | None) -> str:
        if figure is None:
            return ""
        height = figure.layout.height or figures.HEIGHT
        markup = figure.to_html(
            full_html=False,
            include_plotlyjs=self.count == 0,
            config=PLOTLY_CONFIG,
            default_width="100%",
            default_height=f"{height}px",
        )
        self.count += 1
        return f'<div class="figure">{markup}</div>'


def table(frame: pd.DataFrame, row_classes: list[str] | None = None) -> str:
    """A sortable HTML table of display strings; every header and cell is escaped."""
    text = [not all(_is_number(v) for v in frame[c] if v != "") for c in frame.columns]
    head = "".join(f'<th class="{"text" if t else ""}">{escape(str(c))}</th>' for c, t in zip(frame.columns, text))
    rows = []
    for i, values in enumerate(frame.itertuples(index=False)):
        css = f' class="{row_classes[i]}"' if row_classes and row_classes[i] else ""
        cells = "".join(f'<td class="{"text" if t else ""}">{escape(str(v))}</td>' for v, t in zip(values, text))
        rows.append(f"<tr{css}>{cells}</tr>")
    return f'<div class="scroll"><table class="sortable"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table></div>'


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _row_classes(board: pd.DataFrame) -> list[str]:
    marked = {Role.BASELINE: "baseline", Role.FLOOR: "classical"}  # the page's CSS classes
    return [marked.get(role_of(r), "") for r in board["role"]]


def board_table(board: pd.DataFrame, metric: Metric, select: Metric | None = None) -> str:
    return table(display(board, columns_for(board, metric, COLUMNS, select)), _row_classes(board))


def _section(title: str, body: str, anchor: str) -> str:
    return f'<section id="{anchor}"><h2>{escape(title)}</h2>{body}</section>' if body else ""


def _note(text: str) -> str:
    return f'<p class="note">{escape(text)}</p>'


def _leaderboards(ranking: Ranking, by: tuple[str, ...], reproduced: pd.DataFrame | None = None) -> str:
    metric, parts = ranking.metric, []
    if len(ranking.boards) > 1:
        parts.append(_note(f"Trials were measured on {len(ranking.boards)} different test sets; each is ranked on its own."))
    for key, board in ranking.boards.items():
        parts.append(f"<h3>Test set {escape(key)}: {len(board)} ranked trial(s)</h3>{board_table(board, metric, ranking.select)}")
        best = best_per_group(board, by)
        parts.append(f"<h4>Best per {escape(' x '.join(by))}</h4>{board_table(best, metric, ranking.select)}")
    for key, seeds in seed_tables(ranking, reproduced).items():
        shown = configurations.display(seeds, ranking.select)
        parts.append(f"<h3>{escape(seeds_heading(key, ranking))}</h3>{table(display(shown, [(c, c) for c in shown.columns]))}")
    unranked = ranking.unranked
    if len(unranked):
        columns = [(h, c) for h, c in UNRANKED_COLUMNS if c in unranked.columns]
        parts.append(f"<h3>Not ranked: {len(unranked)} trial(s) that diverged, failed or have no {escape(ranking.select.column)}</h3>")
        parts.append(table(display(unranked, columns)))
    return "".join(parts)


def _sample_grids(ranking: Ranking, directories: dict[str, Path]) -> str:
    """Originals over reconstructions for the best AE and the best VAE, plus VAE draws from the prior."""
    parts = []
    for kind in ("ae", "vae"):
        boards = [b[b["kind"] == kind] for b in ranking.boards.values() if "kind" in b.columns]
        row = next((b.iloc[0] for b in boards if len(b)), None)
        if row is None:
            continue
        try:
            samples = load_samples(directories[row["sweep"]], row["trial_id"])
        except HamtuneError as exc:  # one damaged samples file costs its figure, not the report
            log.warning("%s; its sample grid is left out", exc)
            continue
        if "original" not in samples:
            continue
        rows: list[np.ndarray] = [samples["original"][:MAX_IMAGES], samples.get("reconstruction", np.empty(0))[:MAX_IMAGES]]
        caption = "top: test originals; below: reconstructions"
        if "prior" in samples:
            rows.append(samples["prior"][:MAX_IMAGES])
            caption += "; bottom: samples from the prior"
        dx = " ".join(str(d) for d in samples.get("dx", [])[:MAX_IMAGES])
        metric = ranking.metric.column
        label = f"Best {kind.upper()}: {row['sweep']}/{row['trial_id']} ({row.get('arch', '')}), {metric} {fmt(row[metric])}"
        parts.append(
            f'<figure><img alt="{escape(label)}" src="{data_uri(tile(rows))}">'
            f"<figcaption><b>{escape(label)}</b><br>{escape(caption)}. Columns (dx): {escape(dx)}</figcaption></figure>"
        )
    return "".join(parts)


def sweep_choices(ranking: Ranking, records: list[Chosen]) -> pd.DataFrame:
    """Each sweep's chosen row (its folder's record, results.chosen); a sweep without one (e.g. a folder of
    baselines) by its best row on validation, as its board orders it. Never by a test metric."""
    rows = []
    for board in ranking.boards.values():
        for sweep, block in board.groupby("sweep", sort=False):
            picked = chosen_in(block, [r for r in records if r.sweep in ("", str(sweep))])
            rows.append(picked[0] if picked else block.iloc[0])
    return pd.DataFrame(rows).reset_index(drop=True) if rows else pd.DataFrame()


def _sweep_comparison(ranking: Ranking, embed: Embedder, records: list[Chosen]) -> str:
    ranked, metric = ranking.ranked, ranking.metric
    if ranked["sweep"].nunique() < 2:
        return ""
    best = sweep_choices(ranking, records)
    shared = [(h, c) for h, c in columns_for(best, metric, select=ranking.select) if c not in ("sweep", "rank")]
    columns = [("sweep", "sweep"), *shared, ("test set", "test_key")]
    note = _note(
        f"The chosen model of each sweep (chosen on validation, {ranking.select.column}; its recorded choice "
        "where the folder has one), with its test metrics; compare sweeps only within one test set."
    )
    return note + table(display(best, columns), _row_classes(best)) + embed(figures.sweep_comparison(ranked, metric))


def reproduced(sweeps: list[Sweep]) -> pd.DataFrame | None:
    """Every sweep's reproduce.parquet rows, one frame (None when no sweep was reproduced)."""
    frames = [s.reproduce for s in sweeps if s.reproduce is not None and "config_id" in s.reproduce.columns]
    return pd.concat(frames, ignore_index=True) if frames else None


def reproduction_summary(sweeps: list[Sweep]) -> pd.DataFrame:
    """Per sweep and config_id, for every numeric column of reproduce.parquet: the new seeds' mean, std and
    the verdict, from the one summary `hamtune reproduce` prints (results.reproduction.summarise)."""
    parts = []
    for sweep in sweeps:
        frame = sweep.reproduce
        if frame is None or "config_id" not in frame.columns or not len(frame):
            continue
        metrics = tuple(
            c
            for c in frame.columns
            if c not in ("config_id", "seed") and pd.api.types.is_numeric_dtype(frame[c]) and not pd.api.types.is_bool_dtype(frame[c])
        )
        summary = summarise(frame, sweep.trials, metrics)
        rows = []
        for config_id, block in summary.groupby("config_id", sort=True):
            row = {"config_id": config_id, "seeds": int(block["seeds"].max())}
            for item in block.itertuples(index=False):
                row.update({f"{item.metric} mean": item.mean, f"{item.metric} std": item.std, f"{item.metric} verdict": item.verdict})
            rows.append(row)
        if rows:
            parts.append(pd.DataFrame(rows).assign(sweep=sweep.name))
    return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()


def _reproduction(sweeps: list[Sweep], metric: Metric, embed: Embedder) -> str:
    summary = reproduction_summary(sweeps)
    if not len(summary):
        return ""
    metrics = sorted({c.rsplit(" ", 1)[0] for c in summary.columns if c.endswith(" mean")})
    shown = pd.DataFrame({"sweep": summary["sweep"], "config": summary["config_id"], "new seeds": summary["seeds"]})
    for name in metrics:
        pairs = zip(summary[f"{name} mean"], summary[f"{name} std"])
        shown[name] = [f"{fmt(m)} ± {fmt(s)}" if not pd.isna(s) else fmt(m) for m, s in pairs]
        verdicts = summary[f"{name} verdict"].fillna("n/a")
        if (verdicts != "n/a").any():
            shown[f"{name}: holds?"] = verdicts
    column = next((c for c in (metric.column, metric.column.removeprefix("test_")) if c in metrics), None)
    figure = figures.reproduction(summary, column) if column else None
    note = _note(f"Mean ± std over the new seeds (the original seed's rerun is not counted); {SPREAD}.")
    return note + table(display(shown, [(c, c) for c in shown.columns])) + embed(figure)


@dataclass
class Page:
    """What the sections of one report read: the sweeps and their ranking, and what the summary works out once
    (each board's importances and chosen row)."""

    sweeps: list[Sweep]
    ranking: Ranking
    by: tuple[str, ...]
    trials: pd.DataFrame
    epochs: pd.DataFrame
    scores: pd.DataFrame
    embed: Embedder
    directories: dict[str, Path]
    importances: dict[str, Importance]
    records: list[Chosen]
    verdicts: list[str]
    chosen: list[pd.Series]
    pairs: pd.DataFrame  # the same models on internal and external test sets (results/external.py)


def read_page(sweeps: list[Sweep], ranking: Ranking, by: tuple[str, ...]) -> Page:
    """Everything the sections share, computed once: intervals, importances and each board's verdict."""
    trials, epochs, scores = combine(sweeps)
    if not all("test_auroc_low" in board.columns for board in ranking.boards.values()):
        ranking = ranking_with_intervals(ranking, scores)
    metric = ranking.metric
    declared = {str(name): s.distributions for s in sweeps for name in s.trials["sweep"].unique()}
    importances: dict[str, Importance] = {
        key: param_importance(search_trials(board), ranking.select, declared) for key, board in ranking.boards.items()
    }
    records = chosen_of_folders(s.directory for s in sweeps)
    verdicts, chosen = [], []
    for key, board in ranking.boards.items():
        picked = chosen_in(board, records)
        found = verdict(board, key, metric, picked[0] if picked else None)
        chosen.append(found.best)
        verdicts.append(
            verdict_html(
                found, importances[key], ranking, comparisons(board, found.best, scores), board, picked[1].rule if picked else None
            )
        )
    pairs = side_by_side(ranking)
    basis = claim_basis(ranking, pairs)
    verdicts.append(f"<p><b>{escape(basis)}</b></p>" if basis else "")
    directories = {str(name): s.directory for s in sweeps for name in s.trials["sweep"].unique()}
    return Page(sweeps, ranking, by, trials, epochs, scores, Embedder(), directories, importances, records, verdicts, chosen, pairs)


def _parameters(page: Page) -> str:
    what = []
    for key in page.ranking.boards:
        importance = page.importances[key]
        what.append(page.embed(figures.parallel_coordinates(importance, key)))
        what.append(page.embed(figures.importance_bar(importance, key)) + _note(f"{key}: {importance.note}"))
    return "".join(what)


def _enough(page: Page) -> str:
    ranking = page.ranking
    enough = "".join(page.embed(figures.expected_best(board, ranking.select, key)) for key, board in ranking.boards.items())
    return _note(EXPECTED_BEST) + enough if enough else ""


def _curves(page: Page) -> str:
    top = pd.concat([b.head(figures.MAX_CURVES) for b in page.ranking.boards.values()], ignore_index=True)
    top = top.sort_values("rank", kind="stable")
    column = figures.validation_column(page.ranking.metric, page.epochs, page.trials)
    return page.embed(figures.learning_curves(top, page.epochs, column))


def _per_group(page: Page, figure: Callable[[pd.DataFrame, pd.DataFrame, str], go.Figure | None]) -> str:
    return "".join(page.embed(figure(best_per_group(board, page.by), page.scores, key)) for key, board in page.ranking.boards.items())


def _maps(page: Page) -> str:
    from hamtune.report.maps import chosen_maps  # the model itself (torch), only when a page is written

    column = page.ranking.select.column
    return "".join(chosen_maps(row, page.scores, column) for row in page.chosen if is_deep(pd.DataFrame([row])).iloc[0])


@dataclass(frozen=True)
class Section:
    """One section of the page, in page order: its title, anchor and body (empty: the section is left out);
    `stage` is announced to the progress line before it is built."""

    title: str
    anchor: str
    body: Callable[[Page], str]
    stage: str | None = None


SECTIONS: tuple[Section, ...] = (  # tests/integration/test_report.py builds every one
    Section("Which model is best and why", "summary", lambda p: f'<div class="summary">{"".join(p.verdicts)}</div>', "leaderboards"),
    Section("How to read this report", "how-to-read", lambda p: how_to_read(p.ranking)),
    Section("Leaderboard", "leaderboard", lambda p: _leaderboards(p.ranking, p.by, reproduced(p.sweeps))),
    Section("Internal vs external test set", "external", lambda p: external_section(p.pairs, p.ranking, table)),
    Section(
        "Reconstruction quality vs anomaly detection",
        "quality",
        lambda p: "".join(p.embed(figures.quality_vs_detection(board, key)) for key, board in p.ranking.boards.items()),
        "figures",
    ),
    Section("Parameters and their importance", "parameters", _parameters),
    Section("How many trials are enough", "trials", _enough),
    Section("Optimisation history", "history", lambda p: p.embed(figures.optimisation_history(search_trials(p.trials)))),
    Section("Learning curves", "curves", _curves),
    Section("ROC and precision-recall of the best per group", "roc", lambda p: _per_group(p, figures.roc_pr)),
    Section("Anomaly scores, normal vs anomalous, per diagnosis", "scores", lambda p: _per_group(p, figures.score_distributions)),
    Section("Anomaly maps of the chosen model", "maps", _maps, "anomaly maps"),
    Section("Originals, reconstructions and samples", "images", lambda p: _sample_grids(p.ranking, p.directories)),
    Section("Sweeps side by side", "sweeps", lambda p: _sweep_comparison(p.ranking, p.embed, p.records)),
    Section("Reproduction over seeds", "reproduction", lambda p: _reproduction(p.sweeps, p.ranking.metric, p.embed)),
    Section("Stress test: acquisition shift", "stress", lambda p: stress_section(p.sweeps, p.embed, table)),
)


def build_page(
    sweeps: list[Sweep], ranking: Ranking, by: tuple[str, ...], progress: Callable[[str], None] = lambda stage: None
) -> tuple[str, int]:
    """The page and the number of Plotly figures in it; `progress` hears the name of each stage as it starts."""
    progress("parameter importance")
    page = read_page(sweeps, ranking, by)
    sections = []
    for section in SECTIONS:
        if section.stage:
            progress(section.stage)
        sections.append(_section(section.title, section.body(page), section.anchor))
    names = ", ".join(escape(s.name) for s in sweeps)
    text = (
        f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>hamtune report: {names}</title>'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{STYLE}</style></head>'
        f'<body data-figures="{page.embed.count}"><h1>hamtune report</h1>'
        f'<p class="meta">{len(sweeps)} sweep(s): {names}; {len(page.trials)} trial(s); {escape(page.ranking.label)}; '
        f"hamtune {escape(hamtune.__version__)}, {escape(time.strftime('%Y-%m-%d %H:%M'))}</p>"
        f"{''.join(sections)}<script>{SORT_SCRIPT}</script></body></html>"
    )
    return text, page.embed.count


def write_report(
    sweeps: list[Sweep], ranking: Ranking, by: tuple[str, ...], out: Path, progress: Callable[[str], None] = lambda stage: None
) -> int:
    """Write the page atomically; returns the number of figures in it."""
    page, count = build_page(sweeps, ranking, by, progress)
    progress(f"writing {len(page) / 1e6:.1f} MB")
    out = Path(out)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(out) as tmp:
            tmp.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise HamtuneError(f"{out}: cannot write the report ({exc.strerror or exc})") from None
    return count
