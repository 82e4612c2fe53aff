"""Leaderboards as people read them: the columns that decide between models, in table, markdown or CSV form."""

from __future__ import annotations

import re
from collections.abc import Sequence

import pandas as pd

from hamtune import escape
from hamtune.report.summary import best_model_line
from hamtune.results import configurations
from hamtune.results.chosen import Chosen, chosen_in
from hamtune.results.intervals import INTERVAL_METRICS, comparisons, judgement, name_of, shown
from hamtune.results.numbers import fmt, fmt_delta
from hamtune.results.rank import Metric, Ranking, best_per_group, is_deep, verdict
from hamtune.results.reproduction import INTERVAL_RULE
from hamtune.results.roles import Role, having

# (header, trials column); absent columns are left out, so sweeps without a VAE or with classical rows still print.
COLUMNS = (
    ("rank", "rank"),
    ("sweep", "sweep"),
    ("trial", "trial_id"),
    ("role", "role"),
    ("model", "model"),
    ("kind", "kind"),
    ("arch", "arch"),
    ("latent_dim", "latent_dim"),
    ("batch_size", "batch_size"),
    ("lr", "lr"),
    ("rebalance", "rebalance"),
    ("epochs", "epochs_run"),
    ("status", "status"),
    ("AUROC", "test_auroc"),
    ("AUPRC", "test_auprc"),
    ("F1", "test_f1"),
    ("precision", "test_precision"),
    ("recall", "test_recall"),
    ("PSNR", "test_psnr"),
    ("SSIM", "test_ssim"),
    ("MSE", "test_mse"),
    ("ELBO", "test_elbo"),
    ("wall_s", "wall_time_s"),
    ("floor check", "floor"),
)
PER_CLASS = re.compile(r"test_auroc_([a-z]+)")  # each anomalous class against the normal ones (evaluate.per_class)
INTERVAL_ENDS = ("low", "high")
UNRANKED_COLUMNS = (
    ("sweep", "sweep"),
    ("trial", "trial_id"),
    ("kind", "kind"),
    ("arch", "arch"),
    ("status", "status"),
    ("epochs", "epochs_run"),
    ("reason", "why"),
)


def columns_for(board: pd.DataFrame, metric: Metric, spec=COLUMNS, select: Metric | None = None) -> list[tuple[str, str]]:
    """The spec's columns this board has and that say something (all-empty ones, like role without baselines, go),
    with the column that ranked the board (`select`) just before the test metrics."""
    chosen = []
    for header, column in spec:
        if column not in board.columns or board[column].isna().all():
            continue
        if column == "role" and not board[column].astype(bool).any():
            continue
        if column == "sweep" and board[column].nunique() < 2:
            continue
        if column == "status" and set(board[column]) == {"completed"}:
            continue
        chosen.append((header, column))
    per_class = [
        (f"AUROC {m.group(1)}", c)
        for c in board.columns
        if (m := PER_CLASS.fullmatch(c)) and m.group(1) not in INTERVAL_ENDS and board[c].notna().any()
    ]
    after = next((i + 1 for i, (_, c) in enumerate(chosen) if c == "test_auprc"), len(chosen))
    chosen[after:after] = per_class
    if metric.column not in {c for _, c in chosen} and metric.column in board.columns:
        chosen.append((metric.column, metric.column))
    if select is not None and select.column != metric.column and select.column in board.columns:
        chosen = [(h, c) for h, c in chosen if c != select.column]
        first_test = next((i for i, (_, c) in enumerate(chosen) if c.startswith("test_")), len(chosen))
        chosen.insert(first_test, (f"{select.column} (ranks)", select.column))
    return chosen


def display(board: pd.DataFrame, columns: list[tuple[str, str]], intervals: bool = True) -> pd.DataFrame:
    """Strings ready to print: numbers to 4 significant digits, missing values empty; with `intervals`, a test
    AUROC/AUPRC that has a bootstrap interval (results.intervals) is shown with it, rounded to what it supports."""
    out = {}
    for header, column in columns:
        ends = [f"{column}_{end}" for end in INTERVAL_ENDS]
        if intervals and column in INTERVAL_METRICS and all(e in board.columns for e in ends):
            out[f"{header} (95% CI)"] = [
                shown(v, lo, hi) if pd.notna(lo) else fmt(v) for v, lo, hi in zip(board[column], board[ends[0]], board[ends[1]])
            ]
        else:
            out[header] = [fmt(v) for v in board[column]]
    return pd.DataFrame(out, dtype=object)


MACHINE_COLUMNS = (
    "test_set",
    "rank",
    "chosen",
    "sweep",
    "trial_id",
    "role",
    "model",
    "kind",
    "arch",
    "config_id",
    "seed",
    "members",
    "latent_dim",
    "batch_size",
    "lr",
    "rebalance",
    "epochs_run",
    "status",
    "val_auroc",
    "val_auprc",
    "val_loss",
    "test_auroc",
    "test_auroc_low",
    "test_auroc_high",
    "test_auprc",
    "test_auprc_low",
    "test_auprc_high",
    "test_f1",
    "test_precision",
    "test_recall",
    "test_psnr",
    "test_ssim",
    "test_mse",
    "test_elbo",
    "threshold",
    "wall_time_s",
    "floor",
)


def machine_columns(ranking: Ranking) -> list[str]:
    """The columns of `report --format csv/json`: the same whatever the results hold (empty where a row has no
    value), plus the ranking and reported columns when the flags name others."""
    return list(dict.fromkeys((*MACHINE_COLUMNS, ranking.select.column, ranking.metric.column)))


def machine_table(ranking: Ranking, top: int | None, chosen: Sequence[Chosen], form: str) -> str:
    """Every ranked row of every test set (the first `top` of each with --top), machine names, full precision;
    `chosen` marks each folder's recorded chosen model (results.chosen)."""
    parts = []
    for key, board in ranking.boards.items():
        board = board.head(top) if top else board
        marked = pd.Series(False, index=board.index)
        for record in chosen:
            found = chosen_in(board, [record])
            if found is not None:
                marked[found[0].name] = True
        parts.append(board.assign(test_set=key, chosen=marked))
    board = pd.concat(parts, ignore_index=True).reindex(columns=machine_columns(ranking))
    if form == "json":
        return board.to_json(orient="records", indent=1)
    return escape.spreadsheet_frame(board).to_csv(index=False).rstrip("\n")  # cells that a spreadsheet would run, neutralised


def render(frame: pd.DataFrame, form: str) -> str:
    headers = [str(c) for c in frame.columns]
    rows = [[str(v).replace("\n", " ") for v in row] for row in frame.itertuples(index=False)]
    if form == "markdown":
        lines = ["| " + " | ".join(escape.markdown(h) for h in headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(escape.markdown(v) for v in row) + " |" for row in rows])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def heading(text: str, form: str) -> str:
    return f"## {escape.markdown(text)}" if form == "markdown" else text


def prose(text: str, form: str) -> str:
    """Lines of text between the tables; in Markdown each escaped (the names in them come from results folders)."""
    return "\n".join(escape.markdown(line) for line in text.split("\n")) if form == "markdown" else text


def optimism_line(board: pd.DataFrame, ranking: Ranking, chosen: Sequence[Chosen] = ()) -> str:
    """How far the chosen model's test value (results.chosen) is from the best test value of any deep trial: what
    choosing on test labels would have claimed."""
    found_chosen = chosen_in(board, chosen)
    found = verdict(board, "", ranking.metric, found_chosen[0] if found_chosen else None)
    best, picked = found.best_on_metric, found.best
    if best is None or (ranking.optimistic and not found_chosen):
        return ""
    column = ranking.metric.column
    gap = float(best[column]) - float(picked[column])
    how = "Chosen on validation"
    if found_chosen:
        record = found_chosen[1]
        how = f"Chosen on validation ({record.rule})"
        if record.seeds.get(f"{record.metric}_mean") is not None:
            how += f": {record.metric} {configurations.mean_sd(pd.Series(record.seeds), record.metric)} over {record.seeds['n']} seeds"
    return (
        f"{how}: {picked['trial_id']} with {column} {fmt(picked[column])}. The best {column} of any "
        f"deep trial is {fmt(best[column])} ({best['trial_id']}); claiming it would be choosing on test labels "
        f"(optimistic by {fmt_delta(gap, best[column], picked[column])})."
    )


def has_repeats(deep: pd.DataFrame) -> bool:
    """Whether some configuration was trained on more than one seed (a confirm stage)."""
    return "config_id" in deep.columns and bool(deep["config_id"].dropna().duplicated().any())


def seed_tables(ranking: Ranking, reproduced: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Per test set, the configurations measured on 2+ seeds (confirm stage, reproduce), best mean validation first."""
    tables = {}
    for key, board in ranking.boards.items():
        deep = board[is_deep(board)]
        if not has_repeats(deep) and (reproduced is None or not len(reproduced)):
            continue  # every trial its own configuration: nothing to aggregate (and 5,000 of them would take a while)
        table = configurations.per_configuration(configurations.seed_rows(deep, reproduced), ranking.select)
        if configurations.has_seeds(table):
            tables[key] = table[table["n"] >= 2]
    return tables


def seeds_heading(key: str, ranking: Ranking) -> str:
    return (
        f"Configurations over seeds, test set {key}: chosen by the mean {ranking.select.column} (mean +- sd over seeds, [{INTERVAL_RULE}])"
    )


def comparison_lines(board: pd.DataFrame, ranking: Ranking, scores: pd.DataFrame, records: Sequence[Chosen] = ()) -> str:
    """The chosen model against the best baseline and the next rank, by paired bootstrap of test AUROC."""
    found = chosen_in(board, records)
    chosen = verdict(board, "", ranking.metric, found[0] if found else None).best
    return "\n".join(
        f"{name_of(chosen)} {judgement(difference, f'{what} ({name_of(row)})')}."
        for what, row, difference in comparisons(board, chosen, scores)
    )


def text_report(
    ranking: Ranking,
    by: tuple[str, ...],
    top: int | None,
    form: str,
    scores: pd.DataFrame | None = None,
    reproduced: pd.DataFrame | None = None,
    chosen: Sequence[Chosen] = (),
) -> str:
    """The terminal's view: per test set the leaderboard, the best per group and the baselines, the chosen model's
    paired comparisons (with `scores`); configurations over seeds; then the unranked."""
    metric = ranking.metric
    if form in ("csv", "json"):
        return machine_table(ranking, top, chosen, form)
    assert top is not None  # None (every row) only for the machine formats
    ranked = ranking.ranked
    sweeps = list(dict.fromkeys(ranked["sweep"]))
    parts = [f"{len(ranked)} ranked trial(s) of {len(sweeps)} sweep(s) ({', '.join(sweeps)}), {ranking.label}"]
    if len(ranking.boards) > 1:
        parts[0] += f"\ntrials were measured on {len(ranking.boards)} different test sets: each is ranked on its own"
    parts[0] = prose(parts[0], form)
    for key, board in ranking.boards.items():
        shown = f"top {top} of {len(board)}" if len(board) > top else f"{len(board)} trial(s)"
        parts.append(heading(f"Leaderboard, test set {key} ({shown})", form))
        parts.append(render(display(board.head(top), columns_for(board, metric, select=ranking.select)), form))
        groups = best_per_group(board, by)
        parts.append(heading(f"Best per {' x '.join(by)}, test set {key}", form))
        parts.append(render(display(groups, columns_for(groups, metric, select=ranking.select)), form))
        marked = board[having(board["role"], Role.BASELINE, Role.FLOOR)]
        if len(marked):
            parts.append(heading(f"Baselines, test set {key} (rank among {len(board)})", form))
            parts.append(render(display(marked, columns_for(marked, metric, select=ranking.select)), form))
        found = chosen_in(board, chosen)
        parts.append(prose(best_model_line(board, verdict(board, key, metric, found[0] if found else None).best, ranking.select), form))
        parts.append(prose(optimism_line(board, ranking, chosen), form))
        if scores is not None:
            parts.append(prose(comparison_lines(board, ranking, scores, chosen), form))
    for key, table in seed_tables(ranking, reproduced).items():
        parts.append(heading(seeds_heading(key, ranking), form))
        parts.append(render(configurations.display(table, ranking.select), form))
    if len(ranking.unranked):
        unranked = ranking.unranked
        parts.append(heading(f"Not ranked ({len(unranked)}: diverged, failed or without a {ranking.select.column} value)", form))
        parts.append(render(display(unranked, [(h, c) for h, c in UNRANKED_COLUMNS if c in unranked.columns]), form))
    return "\n\n".join(part for part in parts if part)
