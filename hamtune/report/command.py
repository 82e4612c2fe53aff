"""The report command (`hamtune report`, `python -m hamtune.report`): leaderboards in the terminal and an HTML report.

Only argparse is imported at module level: `hamtune`'s parser takes add_arguments without paying for
pandas or Plotly. `run_report` takes plain values, so `hamtune demo` (or a notebook) calls it directly.
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable
from pathlib import Path

from hamtune.results.layout import HTML_NAME

log = logging.getLogger(__name__)

DEFAULT_ROOT = Path("results")
FORMATS = ("table", "markdown", "csv", "json", "methods", "latex")  # what --format (the API's output_format) prints


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive whole number, got {text!r}")
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "results_dirs",
        nargs="*",
        type=Path,
        metavar="RESULTS_DIR",
        help=f"sweep results folders (default: every folder under ./{DEFAULT_ROOT} with a trials.parquet)",
    )
    parser.add_argument(
        "--metric",
        default="test_auroc",
        help="the column reported and compared with the baselines, e.g. "
        "test_auprc, test_ssim, test_mse, wall_time_s; a bare name means test_<name> (default test_auroc)",
    )
    parser.add_argument(
        "--rank-by",
        default=None,
        help="the column that orders the leaderboards (default: the sweeps' "
        "validation objective, e.g. val_auroc); a test column is labelled optimistic",
    )
    parser.add_argument(
        "--top",
        type=_positive,
        default=None,
        help="rows of each leaderboard to print (default 10 for table and markdown; csv and json carry every row unless --top is given)",
    )
    parser.add_argument("--by", default=None, help="columns for the best-per-group table (default kind,arch,rebalance)")
    parser.add_argument("--html", type=Path, default=None, help=f"write the HTML report here (default <first results dir>/{HTML_NAME})")
    parser.add_argument("--no-html", action="store_true", help="print the leaderboards only")
    parser.add_argument(
        "--format",
        choices=FORMATS,
        default="table",
        help="terminal output; csv and json print the leaderboards only, one row per trial with the same "
        "columns whatever the results (and write no HTML); methods (Markdown) and latex print each "
        "folder's methods card for a paper instead of the leaderboards (default table)",
    )


MACHINE_FORMATS = ("csv", "json")  # leaderboards for programs: every row, stable columns, nothing else written
TABLE_ROWS = 10  # rows a table or markdown leaderboard prints unless --top says otherwise
PROGRESS_TRIALS = 500  # reports of this many trials say what they are doing on stderr


def validation_objective(trials):
    """The sweeps' validation objective; None for results without validation metrics (only the reported metric
    can order them then, and the report says that this is optimistic)."""
    from hamtune.errors import HamtuneError
    from hamtune.results.rank import objective

    try:
        return objective(trials)
    except HamtuneError:
        return None


def run_report(
    results_dirs: list[Path] | None = None,
    *,
    metric: str = "test_auroc",
    rank_by: str | None = None,
    top: int | None = None,
    by: str | None = None,
    html: Path | None = None,
    no_html: bool = False,
    output_format: str = "table",
    quiet: bool = False,
    show: Callable[[str], None] | None = None,
) -> Path | None:
    """Write the HTML report; returns its path (None with no_html, or a csv/json/methods format: those only print).
    The leaderboards (or methods cards) go to `show`, which the CLI passes to print them: a library caller gets no
    terminal output. `top` cuts each leaderboard (default 10 rows in a table; csv and json carry every row). `quiet`
    also drops the progress and `report:` log lines."""
    from hamtune import escape
    from hamtune.gate import is_report, output
    from hamtune.report.load import combine, load_sweeps
    from hamtune.report.tables import text_report
    from hamtune.results.intervals import ranking_with_intervals
    from hamtune.results.rank import parse_groups, rank, resolve_metric

    if output_format in ("methods", "latex"):
        from hamtune.report.load import discover
        from hamtune.report.methods import methods_card

        cards = [methods_card(d, output_format) for d in (results_dirs or discover(DEFAULT_ROOT))]
        if show is not None:
            show("\n\n".join(cards))
        return None
    sweeps = load_sweeps(results_dirs, DEFAULT_ROOT)
    out = None if no_html or output_format in MACHINE_FORMATS else Path(html) if html else sweeps[0].directory / HTML_NAME
    if out is not None:  # refused before any work: never a sweep's own files, a bundle, or a page hamtune did not write
        own_page = [s.directory for s in sweeps if Path(s.directory / HTML_NAME).resolve() == Path(out).resolve()]
        output(
            out,
            flag="--html",
            kind="file",
            own=is_report,
            existing="replace",
            reads=[s.directory for s in sweeps],
            writes_in=own_page[0] if own_page else None,
        )
    trials, _, scores = combine(sweeps)
    chosen = resolve_metric(metric, trials)
    groups = parse_groups(by, trials)
    select = resolve_metric(rank_by, trials) if rank_by else validation_objective(trials)
    ranking = ranking_with_intervals(rank(trials, chosen, select), scores)
    from hamtune.report.html import reproduced
    from hamtune.results.chosen import chosen_of_folders

    if top is None:
        top = None if output_format in MACHINE_FORMATS else TABLE_ROWS
    if show is not None:
        show(
            escape.terminal(
                text_report(
                    ranking, groups, top, output_format, scores, reproduced(sweeps), chosen_of_folders(s.directory for s in sweeps)
                ),
                keep_layout=True,
            )
        )
    if no_html or output_format in MACHINE_FORMATS:
        return None
    from hamtune.report.html import write_report

    started = time.perf_counter()

    def progress(stage: str) -> None:  # a large report takes seconds: say what it is doing
        if len(trials) >= PROGRESS_TRIALS and not quiet:
            log.info("report: %s (%d trials, %.0f s)", stage, len(trials), time.perf_counter() - started, extra={"stderr": True})

    assert out is not None  # None only without a page
    write_report(sweeps, ranking, groups, out, progress)
    if not quiet:
        log.info("report: %s", out, extra={"stderr": True})
    return out
