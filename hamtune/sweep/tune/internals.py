"""Every private member of Ray that hamtune relies on, in one place, each with why (Optuna's and MLflow's are in
sweep/internals.py). `tests/unit/sweep/test_internals.py` checks them against the installed versions, so an
upgrade that moves one fails there, by name, rather than deep inside a sweep.

- Ray Tune's OptunaSearch keeps its state in `OPTUNA_SEARCH_STATE`: the study (`_ot_study`), the study trial of
  each Tune trial (`_ot_trials`), the sampler, the storage, the study's name and the finished trial ids.
  MirroredOptunaSearch (tune/study.py) pickles it as plain data and rebuilds it on unpickle.
- `ray.train._internal.storage.get_fs_and_path`: the filesystem Tune writes its experiment to, which trust.py digests.
- The logger `AUTH_LOGGER`, where Ray 2.60 logs how to turn authentication off (runner.py drops that one line).
- `ray.air._internal.usage.tag_callbacks`, Tune's telemetry of the callbacks a run is given: it imports every tracker
  integration Ray has (MLflow's, W&B's, Comet's, Aim's) only to count them, 3.8 s at each sweep's start where mlflow
  is installed. `skip_callback_telemetry` replaces it with a function that records nothing.
"""

from __future__ import annotations

OPTUNA_SEARCH_STATE = ("_ot_study", "_ot_trials", "_sampler", "_storage", "_study_name", "_completed_trials")
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def tune_filesystem(experiment: str):
    """(pyarrow filesystem, path) of the place Tune writes an experiment to."""
    from ray.train._internal.storage import get_fs_and_path

    return get_fs_and_path(experiment, None)


def skip_callback_telemetry() -> None:
    """Tune counts a run's callbacks for its usage telemetry by importing every tracker integration first; hamtune's
    callbacks are nobody's to count, and the imports cost seconds per sweep."""
    from ray.air._internal import usage

    usage.tag_callbacks = _no_callback_telemetry


def _no_callback_telemetry(callbacks) -> bool:
    return False
