"""Leaderboards as people read them: the columns that decide between models, in table, markdown or CSV form."""

from __future__ import annotations

import pandas as pd

from hamtune.results import configurations
from hamtune.results.numbers import fmt
from hamtune.results.rank import Metric, Ranking, best_per_group, is_deep, verdict

# (header, trials column); absent columns are left out, so sweeps without a VAE or with classical rows still print.
COLUMNS = (
    ("rank", "rank"), ("sweep", "sweep"), ("trial", "trial_id"), ("role", "role"), ("model", "model"),
    ("kind", "kind"), ("arch", "arch"), ("latent_dim", "latent_dim"), ("batch_size", "batch_size"), ("lr", "lr"),
    ("rebalance", "rebalance"), ("epochs", "epochs_run"), ("status", "status"),
    ("AUROC", "test_auroc"), ("AUPRC", "test_auprc"), ("F1", "test_f1"), ("precision", "test_precision"),
    ("recall", "test_recall"), ("PSNR", "test_psnr"), ("SSIM", "test_ssim"), ("MSE", "test_mse"),
    ("ELBO", "test_elbo"), ("wall_s", "wall_time_s"),
)
UNRANKED_COLUMNS = (("sweep", "sweep"), ("trial", "trial_id"), ("kind", "kind"), ("arch", "arch"),
                    ("status", "status"), ("epochs", "epochs_run"), ("reason", "why"))
FORMATS = ("table", "markdown", "csv")


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
    if metric.column not in {c for _, c in chosen} and metric.column in board.columns:
        chosen.append((metric.column, metric.column))
    if select is not None and select.column != metric.column and select.column in board.columns:
        chosen = [(h, c) for h, c in chosen if c != select.column]
        first_test = next((i for i, (_, c) in enumerate(chosen) if c.startswith("test_")), len(chosen))
        chosen.insert(first_test, (f"{select.column} (ranks)", select.column))
    return chosen


def display(board: pd.DataFrame, columns: list[tuple[str, str]]) -> pd.DataFrame:
    """Strings ready to print: numbers to 4 significant digits, missing values empty."""
    return pd.DataFrame({header: [fmt(v) for v in board[column]] for header, column in columns}, dtype=object)


def render(frame: pd.DataFrame, form: str) -> str:
    if form == "csv":
        return frame.to_csv(index=False).rstrip("\n")
    headers = [str(c) for c in frame.columns]
    rows = [[str(v).replace("\n", " ") for v in row] for row in frame.itertuples(index=False)]
    if form == "markdown":
        lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
        return "\n".join(lines + ["| " + " | ".join(v.replace("|", "\\|") for v in row) + " |" for row in rows])
    widths = [max([len(h)] + [len(row[i]) for row in rows]) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


def heading(text: str, form: str) -> str:
    return f"## {text}" if form == "markdown" else text


def optimism_line(board: pd.DataFrame, ranking: Ranking) -> str:
    """How far the top-ranked model's test value is from the best test value of any deep trial: what choosing
    on test labels would have claimed."""
    found = verdict(board, "", ranking.metric)
    best, chosen = found.best_on_metric, found.best
    if best is None or ranking.optimistic:
        return ""
    column = ranking.metric.column
    gap = float(best[column]) - float(chosen[column])
    return (f"Chosen on validation: {chosen['trial_id']} with {column} {fmt(chosen[column])}. The best {column} of any "
            f"deep trial is {fmt(best[column])} ({best['trial_id']}); claiming it would be choosing on test labels "
            f"(optimistic by {gap:+.4g}).")


def seed_tables(ranking: Ranking, reproduced: pd.DataFrame | None = None) -> dict[str, pd.DataFrame]:
    """Per test set, the configurations measured on 2+ seeds (confirm stage, reproduce), best mean validation first."""
    tables = {}
    for key, board in ranking.boards.items():
        table = configurations.per_configuration(configurations.seed_rows(board[is_deep(board)], reproduced), ranking.select)
        if configurations.has_seeds(table):
            tables[key] = table[table["n"] >= 2]
    return tables


def seeds_heading(key: str, ranking: Ranking) -> str:
    return (f"Configurations over seeds, test set {key}: chosen by the mean {ranking.select.column} "
            "(mean +- sd over seeds, [95% t-interval of the mean])")


def text_report(ranking: Ranking, by: tuple[str, ...], top: int, form: str, reproduced: pd.DataFrame | None = None) -> str:
    """The terminal's view: per test set the leaderboard, the best per group and the baselines; then the unranked."""
    metric = ranking.metric
    if form == "csv":
        boards = [b.head(top).assign(test_set=key) for key, b in ranking.boards.items()]
        board = pd.concat(boards, ignore_index=True)
        return render(display(board, columns_for(board, metric, select=ranking.select) + [("test_set", "test_set")]), form)
    ranked = ranking.ranked
    sweeps = list(dict.fromkeys(ranked["sweep"]))
    parts = [f"{len(ranked)} ranked trial(s) of {len(sweeps)} sweep(s) ({', '.join(sweeps)}), {ranking.label}"]
    if len(ranking.boards) > 1:
        parts[0] += f"\ntrials were measured on {len(ranking.boards)} different test sets: each is ranked on its own"
    for key, board in ranking.boards.items():
        shown = f"top {top} of {len(board)}" if len(board) > top else f"{len(board)} trial(s)"
        parts.append(heading(f"Leaderboard, test set {key} ({shown})", form))
        parts.append(render(display(board.head(top), columns_for(board, metric, select=ranking.select)), form))
        groups = best_per_group(board, by)
        parts.append(heading(f"Best per {' x '.join(by)}, test set {key}", form))
        parts.append(render(display(groups, columns_for(groups, metric, select=ranking.select)), form))
        marked = board[board["role"].str.startswith(("baseline:", "classical:"))]
        if len(marked):
            parts.append(heading(f"Baselines, test set {key} (rank among {len(board)})", form))
            parts.append(render(display(marked, columns_for(marked, metric, select=ranking.select)), form))
        parts.append(optimism_line(board, ranking))
    for key, table in seed_tables(ranking, reproduced).items():
        parts.append(heading(seeds_heading(key, ranking), form))
        parts.append(render(configurations.display(table, ranking.select), form))
    if len(ranking.unranked):
        unranked = ranking.unranked
        parts.append(heading(f"Not ranked ({len(unranked)}: diverged, failed or without a {ranking.select.column} value)", form))
        parts.append(render(display(unranked, [(h, c) for h, c in UNRANKED_COLUMNS if c in unranked.columns]), form))
    return "\n\n".join(parts)
