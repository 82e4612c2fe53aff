"""The Optuna samplers a search space may name: one registry entry each, and a plain-data spec to build one.

Tune pickles the searcher when a Tuner is built and at every experiment save, and an Optuna sampler is free
to hold what does not pickle (Optuna 5.1's NSGAIISampler holds a `_thread.lock`). So hamtune never pickles a
sampler: the searcher carries a `SamplerSpec` (name, options, seed, grid) and builds the sampler from it, at
the start and again when a sweep is resumed. Everything a sampler learns lives in the study's storage.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class SamplerKind:
    """What a space may say about one sampler, and how to build it."""

    build: Callable[[int, dict, dict], Any]  # (seed, options, grid) -> optuna.samplers.BaseSampler
    options: dict[str, type]
    multi_objective: bool
    reseed_on_resume: bool = True  # False where the seed fixes a sequence the storage indexes into (QMC's scrambling)


def _tpe(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.TPESampler(seed=seed, multivariate=True, group=True, **options)


def _random(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed)


def _nsga2(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.NSGAIISampler(seed=seed, **options)


def _nsga3(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.NSGAIIISampler(seed=seed, **options)


def _gp(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.GPSampler(seed=seed, **options)


def _cmaes(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.CmaEsSampler(seed=seed, **options)


def _qmc(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.QMCSampler(seed=seed, scramble=True, **options)


def _grid(seed: int, options: dict, grid: dict):
    import optuna

    return optuna.samplers.GridSampler(grid, seed=seed)


SAMPLERS: dict[str, SamplerKind] = {
    "tpe": SamplerKind(_tpe, {"seed": int, "n_startup_trials": int}, multi_objective=True),
    "random": SamplerKind(_random, {"seed": int}, multi_objective=True),
    "nsga2": SamplerKind(_nsga2, {"seed": int, "population_size": int}, multi_objective=True),
    "nsga3": SamplerKind(_nsga3, {"seed": int, "population_size": int}, multi_objective=True),
    "gp": SamplerKind(_gp, {"seed": int, "n_startup_trials": int}, multi_objective=True),
    "cmaes": SamplerKind(_cmaes, {"seed": int, "n_startup_trials": int}, multi_objective=False),
    "qmc": SamplerKind(_qmc, {"seed": int}, multi_objective=False, reseed_on_resume=False),
    "grid": SamplerKind(_grid, {"seed": int}, multi_objective=False),
}
MULTI_OBJECTIVE_SAMPLERS = tuple(name for name, kind in SAMPLERS.items() if kind.multi_objective)


@dataclass(frozen=True)
class SamplerSpec:
    """A sampler as plain data: what travels in Tune's pickles instead of the sampler."""

    name: str
    seed: int
    options: dict = field(default_factory=dict)
    grid: dict = field(default_factory=dict)

    def build(self, resumed_trials: int = 0):
        """The sampler. A sampler rebuilt for a resumed sweep is seeded past the trials the study already holds,
        so it draws new points instead of replaying the ones it drew before the interruption."""
        kind = SAMPLERS[self.name]
        seed = self.seed + resumed_trials if kind.reseed_on_resume else self.seed
        return kind.build(seed, dict(self.options), self.grid)
