"""The Tune side of the Optuna study mirror (sweep/study.py): Ray Tune's OptunaSearch, tagged, reporting per epoch
and pickling as plain data."""

from __future__ import annotations

import logging
import math
import pickle
import warnings

from ray.tune.search.optuna import OptunaSearch

from hamtune.sweep.internals import study_storage_of, trial_number
from hamtune.sweep.samplers import SamplerSpec

log = logging.getLogger(__name__)


class MirroredOptunaSearch(OptunaSearch):
    """OptunaSearch that tags each study trial with its Tune trial_id, reports per epoch, and leaves
    closing the trial to `finish_trial` (see sweep/study.py's docstring).

    It pickles as plain data: Tune pickles the searcher when the Tuner is built and at every save, and
    neither the sampler nor the study's storage is promised to pickle (Optuna 5.1's NSGA-II does not). The
    pickle holds the sampler's spec, the storage URL and the study trial numbers; unpickling reopens the
    study from its storage and rebuilds the sampler (`SamplerSpec.build`)."""

    def __init__(self, *, sampler_spec: SamplerSpec, storage_url: str, results_path: str = "", **kwargs):
        import optuna

        self._sampler_spec = sampler_spec
        self._storage_url = storage_url
        self._results_path = results_path
        super().__init__(sampler=sampler_spec.build(), storage=optuna.storages.RDBStorage(storage_url), **kwargs)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.update(
            _sampler=None,
            _storage=None,
            _ot_study=None,
            _ot_trials={tune_id: trial_number(trial) for tune_id, trial in self._ot_trials.items()},
        )
        return state

    def __setstate__(self, state: dict) -> None:
        import optuna

        self.__dict__.update(state)
        self._storage = optuna.storages.RDBStorage(self._storage_url)
        study_id = self._storage.get_study_id_from_name(self._study_name)
        held = len(self._storage.get_all_trials(study_id, deepcopy=False))
        self._sampler = self._sampler_spec.build(resumed_trials=held)
        self._ot_study = optuna.load_study(  # type: ignore[assignment]  # Ray annotates the attribute as None
            study_name=self._study_name, storage=self._storage, sampler=self._sampler, pruner=optuna.pruners.NopPruner()
        )
        self._ot_trials = {
            tune_id: optuna.trial.Trial(self._ot_study, held_id)  # type: ignore[arg-type]  # as above
            for tune_id, held_id in state["_ot_trials"].items()
        }

    def _setup_study(self, mode) -> None:
        import optuna

        super()._setup_study(mode)
        metrics = self.metric if isinstance(self.metric, list) else [self.metric]
        with warnings.catch_warnings():  # experimental since Optuna 3.2, and what the dashboard shows as the value's name
            warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)
            names = [m.removeprefix("best_") for m in metrics]  # the row's column the value is
            self._ot_study.set_metric_names(names)  # type: ignore[attr-defined]  # Ray annotates _ot_study as None

    @property
    def study(self):
        """The Optuna study this searcher suggests from (its sampler is `study.sampler`)."""
        return self._ot_study

    def study_trial(self, trial_id: str):
        """The study trial a Tune trial was suggested as, or None."""
        return self._ot_trials.get(trial_id)

    def save(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "wb") as file:
            pickle.dump(self.__getstate__(), file)

    def restore(self, checkpoint_path: str) -> None:
        with open(checkpoint_path, "rb") as file:
            self.__setstate__(pickle.load(file))

    def suggest(self, trial_id: str) -> dict | None:
        params = super().suggest(trial_id)
        ot_trial = self._ot_trials.get(trial_id)
        if ot_trial is not None:
            ot_trial.set_user_attr("trial_id", trial_id)
            ot_trial.set_user_attr("results_path", self._results_path)
        return params

    def on_trial_result(self, trial_id: str, result: dict) -> None:
        self._report(trial_id, result)

    def on_trial_complete(self, trial_id: str, result: dict | None = None, error: bool = False) -> None:
        if trial_id in self._completed_trials or trial_id not in self._ot_trials:
            return
        self._report(trial_id, result or {})  # an ASHA-stopped trial's last epoch arrives only here
        self._completed_trials.add(trial_id)

    def _report(self, trial_id: str, result: dict) -> None:
        if isinstance(self.metric, list) or trial_id not in self._ot_trials:
            return  # Optuna keeps no intermediate values for multi-objective studies
        import optuna

        value, epoch = result.get(self.metric), result.get("epoch")
        if isinstance(value, (int, float)) and math.isfinite(value) and isinstance(epoch, int):
            ot_trial = self._ot_trials[trial_id]
            try:
                study_storage_of(self._ot_study).set_trial_intermediate_value(trial_number(ot_trial), epoch, float(value))
            except optuna.exceptions.UpdateFinishedTrialError:
                # A driver killed after finish_trial closed it but before Tune saved that the trial ended
                # resumes it: the study already holds its row's account, and the mirror must not fail the trial.
                log.debug("trial %s: its study trial is already closed; epoch %s not mirrored again", trial_id, epoch)
