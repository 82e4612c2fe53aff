"""The confirm stage inside Tune (the stage and its plan: sweep/confirm.py): a searcher that hands Tune the plan's
trials once every search trial has ended, and ASHA that leaves them alone."""

from __future__ import annotations

import math

from ray.tune.schedulers import ASHAScheduler, TrialScheduler
from ray.tune.search import Searcher

from hamtune.sweep.confirm import CONFIRM_KEY, make_plan
from hamtune.sweep.tune.study import MirroredOptunaSearch


class ConfirmingSearch(MirroredOptunaSearch):
    """hamtune's Optuna searcher for `search_trials` trials, then the confirm stage's seeds (None while search
    trials still run: Tune asks again)."""

    def __init__(
        self, *, search_trials: int, top: int, seeds: int, fuse: str = "off", on_cuda: bool = False, manifest: dict | None = None, **kwargs
    ):
        super().__init__(**kwargs)
        self._search_trials, self._top, self._seeds = search_trials, top, seeds
        self._fuse, self._on_cuda, self._manifest = fuse, on_cuda, manifest or {}
        self._searched: dict[str, dict] = {}  # search trial id -> its config
        self._ended: dict[str, float] = {}  # search trial id -> its delivered objective (NaN if none)
        self._plan: list[dict] | None = None
        self._handed = 0

    def suggest(self, trial_id: str) -> dict | None:
        if len(self._searched) < self._search_trials:
            config = super().suggest(trial_id)
            if isinstance(config, dict):
                self._searched[trial_id] = dict(config)
            return config
        if self._plan is None:
            if len(self._ended) < self._search_trials:
                return None
            self._plan = make_plan(
                self._searched,
                self._ended,
                metric=self.metric,
                mode=self.mode,
                top=self._top,
                seeds=self._seeds,
                fuse=self._fuse,
                on_cuda=self._on_cuda,
                manifest=self._manifest,
                results_path=self._results_path,
            )
        if self._handed >= len(self._plan):
            return Searcher.FINISHED  # type: ignore[return-value]  # Tune's own sentinel, a str its annotation leaves out
        self._handed += 1
        return dict(self._plan[self._handed - 1])

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._searched and trial_id not in self._ended:
            value = (result or {}).get(self.metric)
            self._ended[trial_id] = float(value) if isinstance(value, (int, float)) and not error else math.nan
        super().on_trial_complete(trial_id, result, error)


class ConfirmingASHA(ASHAScheduler):
    """ASHA over the search trials only: a confirm trial is another seed of a chosen configuration."""

    def on_trial_result(self, tune_controller, trial, result: dict) -> str:
        if CONFIRM_KEY in trial.config:
            return TrialScheduler.CONTINUE
        return super().on_trial_result(tune_controller, trial, result)
