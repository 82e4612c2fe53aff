"""The report's opening prose: how to read it, and which model is best and why, as escaped HTML."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from hamtune.escape import html as escape
from hamtune.report.importance import Importance
from hamtune.results.intervals import Interval, judgement, name_of, shown
from hamtune.results.numbers import fmt, fmt_delta
from hamtune.results.rank import Metric, Ranking, Verdict, is_deep
from hamtune.results.roles import Role, role_name, role_of

HOW_TO_READ = """
<ul>
<li>Every row is one trained model (one config of one sweep), with the metrics of its best validation epoch
(the model it delivers and exports). Trials are ranked by <b>{select}</b> ({chosen}) and show
<b>{metric}</b> on the held-out test set; trials measured on different test sets are never ranked together,
so each test set has its own leaderboard.</li>
<li><b>AUROC</b> is the chance that an anomalous image scores higher than a normal one (0.5 is a coin toss);
<b>AUPRC</b> weighs the rare anomalous class; <b>F1, precision, recall</b> use the threshold chosen on the
validation split, never on test labels. <b>PSNR, SSIM, MSE</b> measure reconstruction: a model that
reconstructs everything well, anomalies included, detects poorly, which is why both are plotted together.</li>
<li>Highlighted rows are baselines: the original notebook's configs (<i>seed-ae</i>, <i>seed-vae</i>) and
classical models such as PCA. A searched model is only interesting if it beats them.</li>
<li><i>stopped</i> trials were ended early by the scheduler and still rank; <i>diverged</i> and <i>failed</i>
trials are listed apart with their reason.</li>
<li>Click a table header to sort. Figures are interactive: hover for details, drag to zoom, double-click to
reset, click a legend entry to hide it.</li>
</ul>
"""


def how_to_read(ranking: Ranking) -> str:
    chosen = (
        "optimistic: chosen on test labels, which a user could not have done"
        if ranking.optimistic
        else "chosen on validation, as a user without test labels would choose"
    )
    return HOW_TO_READ.format(select=escape(ranking.select.label), chosen=escape(chosen), metric=escape(ranking.metric.label))


def _describe(row: pd.Series, metric: Metric) -> str:
    shape = [str(row[k]).upper() for k in ("kind", "arch") if isinstance(row.get(k), str)]
    parts = [" ".join(shape) or str(row.get("model", "model"))]
    for key in ("rebalance", "latent_dim", "lr", "beta"):
        if key in row.index and not pd.isna(row[key]):
            parts.append(f"{key} {fmt(row[key])}")
    where = f"{row['sweep']}/{row['trial_id']}"
    low, high = row.get(f"{metric.column}_low"), row.get(f"{metric.column}_high")
    value = shown(row[metric.column], low, high) if low is not None and pd.notna(low) else fmt(row[metric.column])
    return f"<b>{escape(where)}</b> ({escape(', '.join(parts))}) with {escape(metric.column)} <b>{escape(value)}</b>"


def _against(value: float, other: float, name: str, metric: Metric) -> str:
    """A point comparison: never 'beats' (that needs the paired interval, which `compared` gives)."""
    delta = value - other
    if metric.better(value, other):
        return f"above {escape(name)} ({fmt(other)}; {fmt_delta(delta, value, other)})"
    if value == other:
        return f"ties with {escape(name)} ({fmt(other)})"
    return f"<span class='bad'>does not beat {escape(name)} ({fmt(other)}; {fmt_delta(delta, value, other)})</span>"


def _compared(compared: list[tuple[str, pd.Series, Interval | None]]) -> list[str]:
    """One line per paired comparison; marked when the chosen model does not beat the other."""
    lines = []
    for what, row, difference in compared:
        line = f"Paired bootstrap: it {escape(judgement(difference, f'{what} ({name_of(row)})'))}."
        lines.append(line if difference is not None and difference.low > 0 else f"<span class='bad'>{line}</span>")
    return lines


def above_on_validation(board: pd.DataFrame, best: pd.Series, select: Metric) -> pd.DataFrame:
    """The rows that are not deep models (classical baselines, the floor) with a better validation value than the
    chosen deep model, best first: where there are any, the best model here is not a network."""
    if not select.column.startswith("val_") or select.column not in board.columns:
        return board.iloc[0:0]
    others = board[~is_deep(board)]
    values = pd.to_numeric(others[select.column], errors="coerce")
    above = others[values > best[select.column]] if select.higher_is_better else others[values < best[select.column]]
    return above.sort_values(select.column, ascending=not select.higher_is_better, kind="stable")


def best_model_line(board: pd.DataFrame, best: pd.Series, select: Metric) -> str:
    """ "The best model here is <baseline>; the best deep model is <id>, beaten ...", where a non-deep row is better
    on validation than the chosen deep model `best`; '' otherwise. Plain text (the terminal's; `headline` the page's)."""
    above = above_on_validation(board, best, select)
    if not len(above):
        return ""
    top = above.iloc[0]
    names = ", ".join(name_of(r) for _, r in above.head(5).iterrows()) + (" ..." if len(above) > 5 else "")
    return (
        f"The best model here is {name_of(top)} ({select.column} {fmt(top[select.column])}); the best deep model is "
        f"{best['sweep']}/{best['trial_id']} ({select.column} {fmt(best[select.column])}), beaten on validation by "
        f"{len(above)} non-deep model(s): {names}."
    )


def headline(board: pd.DataFrame, best: pd.Series, select: Metric) -> str:
    line = best_model_line(board, best, select)
    return f"<span class='flag'>&#9888; {escape(line)}</span>" if line else ""


def verdict_html(
    verdict: Verdict,
    importance: Importance,
    ranking: Ranking,
    compared: Sequence[tuple[str, pd.Series, Interval | None]] = (),
    board: pd.DataFrame | None = None,
    rule: str | None = None,
) -> str:
    """One test set's answer: the chosen model (results.chosen: on validation, whatever `ranking` orders by; `rule`
    says how), its intervals, the paired comparisons `compared` (results.intervals.comparisons), how it compares
    with each baseline, whether it is below the floor, how optimistic choosing on test would have been, and what
    mattered most. Where a non-deep row of `board` is better on validation, the first line says so."""
    metric, select = ranking.metric, ranking.select
    best = verdict.best
    value = float(best[metric.column])
    if rule:
        how = f"chosen on validation: {escape(rule)}"
    else:
        how = "chosen on test labels (optimistic)" if ranking.optimistic else f"chosen by {escape(select.column)} on validation"
    top = headline(board, best, select) if board is not None else ""
    lines = [top] if top else []
    lines.append(f"{'Best deep model' if top else 'Best'} of {verdict.n_ranked} ranked trial(s), {how}: {_describe(best, metric)}.")
    ranges = [
        f"{name.upper()} {shown(best[column], best[f'{column}_low'], best[f'{column}_high'])}"
        for name, column in (("auroc", "test_auroc"), ("auprc", "test_auprc"))
        if pd.notna(best.get(f"{column}_low"))
    ]
    if ranges:
        lines.append(f"Test {escape('; '.join(ranges))} (95% bootstrap intervals stratified by label, rounded to what they support).")
    if isinstance(best.get("floor"), str):
        lines.append(f"<span class='bad'>&#9888; Floor check (results.floor): {escape(best['floor'])}.</span>")
    lines += _compared(list(compared))
    other = verdict.best_on_metric
    if other is not None and not ranking.optimistic and other["trial_id"] != best["trial_id"]:
        gap = float(other[metric.column]) - value
        lines.append(
            f"The best {escape(metric.column)} of any deep trial is {fmt(other[metric.column])} "
            f"({escape(str(other['sweep']))}/{escape(str(other['trial_id']))}): picking it would be choosing on "
            f"test labels, optimistic by {fmt_delta(gap, value, other[metric.column])}."
        )
    if role_of(best["role"]) is Role.BASELINE:
        searched = verdict.best_searched
        tail = f" The best searched model is {_describe(searched, metric)}." if searched is not None else ""
        lines.append(
            f"<span class='bad'>The best model is the notebook baseline {escape(role_name(best['role']))}: "
            f"no searched config beats it yet.</span>{tail}"
        )
    else:
        for role, other in verdict.seeds.items():
            lines.append(f"Against the notebook's {escape(role_name(role))}: {_against(value, other, role_name(role), metric)}.")
    if verdict.classical:
        comparisons = "; ".join(_against(value, other, role_name(role), metric) for role, other in verdict.classical.items())
        if verdict.beats_classical:
            lines.append(f"Against classical baselines: {comparisons}.")
        else:
            lines.append(
                f"<span class='flag'>&#9888; No deep model beats the classical baseline(s): {comparisons}. "
                f"A simpler method is at least as good on this test set.</span>"
            )
    if importance.top is not None:
        share = importance.values[importance.top]
        lines.append(
            f"The parameter that mattered most for {escape(importance.target)} is <b>{escape(importance.top)}</b> "
            f"({share:.0%} of the explained variance, fANOVA over {importance.trials} complete trials)."
        )
    else:
        lines.append(f"Parameter importance: {escape(importance.note)}")
    return f"<h3>Test set {escape(verdict.test_key)}</h3><ul>" + "".join(f"<li>{line}</li>" for line in lines) + "</ul>"
