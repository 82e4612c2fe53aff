"""`python -m hamtune.report` (also `hamtune report`): leaderboards in the terminal and an HTML report.

Only argparse is imported at module level: `hamtune`'s parser borrows add_arguments without paying for
pandas or Plotly.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


DEFAULT_ROOT = Path("results")
HTML_NAME = "report.html"


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
        "results_dirs", nargs="*", type=Path, metavar="RESULTS_DIR",
        help=f"sweep results folders (default: every folder under ./{DEFAULT_ROOT} with a trials.parquet)",
    )
    parser.add_argument("--metric", default="test_auroc", help="rank by this column, e.g. test_auprc, test_ssim, "
                        "test_mse, wall_time_s; a bare name means test_<name> (default test_auroc)")
    parser.add_argument("--top", type=_positive, default=10, help="rows of each leaderboard to print (default 10)")
    parser.add_argument("--by", default=None, help="columns for the best-per-group table (default kind,arch,rebalance)")
    parser.add_argument("--html", type=Path, default=None, help=f"write the HTML report here (default <first results dir>/{HTML_NAME})")
    parser.add_argument("--no-html", action="store_true", help="print the leaderboards only")
    parser.add_argument("--format", choices=("table", "markdown", "csv"), default="table",
                        help="terminal output; csv prints the leaderboards only, one row per trial (default table)")


def run(args: argparse.Namespace) -> Path | None:
    """Print the leaderboards and write the HTML report; returns the report's path."""
    from hamtune.report.load import combine, load_sweeps
    from hamtune.report.rank import parse_groups, rank, resolve_metric
    from hamtune.report.tables import text_report

    sweeps = load_sweeps(args.results_dirs, DEFAULT_ROOT)
    trials = combine(sweeps)[0]
    metric = resolve_metric(args.metric, trials)
    by = parse_groups(args.by, trials)
    ranking = rank(trials, metric)
    print(text_report(ranking, by, args.top, args.format), flush=True)
    if args.no_html:
        return None
    from hamtune.report.html import write_report

    out = args.html or sweeps[0].directory / HTML_NAME
    write_report(sweeps, ranking, by, out)
    print(f"report: {out}", file=sys.stderr if args.format == "csv" else sys.stdout)
    return out


def main(argv: list[str] | None = None) -> int:
    """`python -m hamtune.report ARGS` is `hamtune report ARGS`: same parser, same error handling."""
    from hamtune.cli import main as hamtune_main

    return hamtune_main(["report", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
