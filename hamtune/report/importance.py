"""Which parameters moved the metric: an in-memory Optuna study rebuilt from trials.parquet, scored by fANOVA.

Each parameter keeps the distribution its sweep's space declared (distributions.json: a log-int
latent_dim, a categorical batch_size), since fANOVA splits a log range and a categorical set
differently from a linear one; only a parameter no sweep of the board declared the same way (or a
`hamtune train` column) gets one read from its values.

Parameters that do not apply to every model (beta for AEs, mlp_width for CNNs: null in the results)
are kept in the study for the parallel-coordinates plot but left out of fANOVA, which needs every
trial to have every parameter; the note says which.
"""

from __future__ import annotations

import math
import typing
import warnings
from dataclasses import dataclass
from functools import partial

import numpy as np
import pandas as pd

from hamtune import escape
from hamtune.config_fields import FIELDS
from hamtune.results.rank import Metric
from hamtune.train.config import TrainConfig

if typing.TYPE_CHECKING:
    import optuna

MIN_TRIALS = 10  # fewer complete trials give no percentages: fANOVA's shares of 6 trials are noise
MAX_FANOVA = 300  # fANOVA's cost grows faster than the trials; beyond this, a seeded random sample of them
RUNTIME_FIELDS = frozenset(
    {"device", "num_threads", "eval_batch_size", "compile", "channels_last", "precision", "preset", "seed"}
)  # how a trial ran, not what was searched (a seed is a draw, not a setting)
LOG_RATIO = 20.0


@dataclass
class Importance:
    """fANOVA importances (largest first) or, when they cannot be estimated, a note saying why."""

    study: optuna.Study | None  # built even when importances are not
    values: dict[str, float]
    note: str
    target: str = ""  # the column explained (the validation objective in the report)
    trials: int = 0  # the complete trials it rests on

    @property
    def top(self) -> str | None:
        return next(iter(self.values), None)


def _varying(trials: pd.DataFrame) -> list[str]:
    names = [name for name in FIELDS if name not in RUNTIME_FIELDS]
    return [n for n in names if n in trials.columns and trials[n].dropna().astype(str).nunique() > 1]


def _distribution(name: str, values: pd.Series):
    import optuna.distributions as d

    base = typing.get_type_hints(TrainConfig)[name]
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if not numeric or base in (str, bool) or str in typing.get_args(base):
        return d.CategoricalDistribution(sorted({escape.html(str(v)) for v in values}))
    low, high = float(values.min()), float(values.max())
    log = low > 0 and high / low >= LOG_RATIO
    if int in (base, *typing.get_args(base)):
        return d.IntDistribution(int(low), int(high), log=log)
    return d.FloatDistribution(low, high, log=log)


def _escaped(distribution):
    """String choices are HTML-escaped for display, as the values are."""
    import optuna.distributions as d

    if not isinstance(distribution, d.CategoricalDistribution):
        return distribution
    return d.CategoricalDistribution([escape.html(c) if isinstance(c, str) else c for c in distribution.choices])


def _holds(distribution, values: pd.Series) -> bool:
    import optuna.distributions as d

    if isinstance(distribution, d.CategoricalDistribution):
        return all(_param_value(distribution, v) in distribution.choices for v in values)
    return bool(((values >= distribution.low) & (values <= distribution.high)).all())


def declared_distribution(name: str, ranked: pd.DataFrame, declared: dict[str, dict[str, str]]):
    """The one distribution every sweep of these rows declared for `name` and that holds their values; None otherwise."""
    from optuna.distributions import json_to_distribution

    sweeps = ranked["sweep"].astype(str).unique() if "sweep" in ranked.columns else []
    found = {declared.get(sweep, {}).get(name) for sweep in sweeps}
    if len(found) != 1 or None in found:
        return None
    declaration = found.pop()
    assert declaration is not None  # None in found returned above
    try:
        distribution = _escaped(json_to_distribution(declaration))
    except (ValueError, KeyError, TypeError):
        return None
    values = ranked[name].dropna()
    return distribution if _holds(distribution, values) else None


def _param_value(distribution, value):
    import optuna.distributions as d

    if isinstance(distribution, d.CategoricalDistribution):
        shown = escape.html(str(value))
        return next((c for c in distribution.choices if c == shown or (not isinstance(c, str) and c == value)), shown)
    return int(value) if isinstance(distribution, d.IntDistribution) else float(value)


def build_study(ranked: pd.DataFrame, metric: Metric, declared: dict[str, dict[str, str]] | None = None):
    """A study with one COMPLETE trial per ranked row, on the declared distributions (`declared`: sweep ->
    parameter -> Optuna JSON) where there are some; string choices are HTML-escaped for display."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = _varying(ranked)
    distributions = {n: declared_distribution(n, ranked, declared or {}) or _distribution(n, ranked[n].dropna()) for n in names}
    study = optuna.create_study(direction="maximize" if metric.higher_is_better else "minimize")
    for _, row in ranked.iterrows():
        present = {n: dist for n, dist in distributions.items() if not pd.isna(row[n])}
        params = {n: _param_value(dist, row[n]) for n, dist in present.items()}
        study.add_trial(optuna.trial.create_trial(params=params, distributions=present, value=float(row[metric.column])))
    return study, names


def param_importance(ranked: pd.DataFrame, metric: Metric, declared: dict[str, dict[str, str]] | None = None) -> Importance:
    """fANOVA of `metric` (the report passes the validation objective) over the parameters every complete trial
    has; a note instead when there are fewer than MIN_TRIALS complete trials or no spread. Trials stopped early
    by the scheduler are left out: their values measure a shorter run, not the configuration."""
    import optuna

    if "status" in ranked.columns:
        ranked = ranked[ranked["status"] == "completed"]
    study, names = build_study(ranked, metric, declared)
    conditional = [n for n in names if ranked[n].isna().any()]
    always = [n for n in names if n not in conditional]
    left_out = f" Left out because they apply to some models only: {', '.join(conditional)}." if conditional else ""
    values = ranked[metric.column].astype(float).to_numpy()
    found = partial(Importance, study, target=metric.column, trials=len(ranked))
    if len(ranked) < MIN_TRIALS:
        return found(
            {},
            f"{len(ranked)} complete trial(s): too few to attribute {metric.column} to parameters "
            f"(at least {MIN_TRIALS} needed; no percentages are shown below that).",
        )
    if not always:
        return found({}, "No parameter varies across all complete trials, so there is nothing to attribute." + left_out)
    if not np.isfinite(values).all() or math.isclose(float(np.ptp(values)), 0.0, abs_tol=1e-12):
        return found({}, f"Every trial scored the same {metric.column}; importance is undefined.")
    sample = study if len(ranked) <= MAX_FANOVA else build_study(ranked.sample(MAX_FANOVA, random_state=0), metric, declared)[0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        result = optuna.importance.get_param_importances(sample, evaluator=evaluator, params=always)
    ordered = dict(sorted(result.items(), key=lambda item: -item[1]))
    over = f"{len(ranked)} complete" if sample is study else f"a random {MAX_FANOVA} of the {len(ranked)}"
    return found(ordered, f"fANOVA of {metric.column} over {over} trials." + left_out)
