"""Everything about stored results; train, sweep, report and export all read and write them through here.

store.py         the results folder: versioned Parquet files (trials, epochs, scores) and samples, written atomically
rank.py          what is ranked against what, and the top trials of a results folder
reproduction.py  the statistics of reproduce.parquet: did a configuration hold on new seeds?
numbers.py       numbers for people: 4 significant digits everywhere
"""

from hamtune.results.numbers import fmt
from hamtune.results.rank import Metric, Ranking, rank, resolve_metric, top_trials
from hamtune.results.store import ResultsWriter, load_results, load_samples, read_parquet, trial_row, write_parquet

__all__ = [
    "Metric", "Ranking", "ResultsWriter", "fmt", "load_results", "load_samples", "rank", "read_parquet", "resolve_metric",
    "top_trials", "trial_row", "write_parquet",
]
