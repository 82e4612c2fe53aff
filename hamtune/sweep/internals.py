"""Every private member of Ray, Optuna and MLflow that hamtune relies on, in one place, each with why.
`tests/unit/sweep/test_internals.py` checks them against the installed versions, so an upgrade that moves one
fails there, by name, rather than deep inside a sweep.

- Ray Tune's OptunaSearch keeps its state in `OPTUNA_SEARCH_STATE`: the study (`_ot_study`), the study trial of
  each Tune trial (`_ot_trials`), the sampler, the storage, the study's name and the finished trial ids.
  MirroredOptunaSearch (study.py) pickles it as plain data and rebuilds it on unpickle.
- Optuna's `Study._storage` and `Trial._trial_id` / `FrozenTrial._trial_id`: the storage and the storage's id of a
  study trial, through which study.py writes intermediate values and a finished trial's state as its results row
  says (the public API cannot tell a trial that Tune, not Optuna, runs).
- `ray.train._internal.storage.get_fs_and_path`: the filesystem Tune writes its experiment to, which trust.py digests.
- The logger `AUTH_LOGGER`, where Ray 2.60 logs how to turn authentication off (runner.py drops that one line).
- `MlflowClient()._tracking_client.store`: opening the store is the only way to learn before a sweep starts that
  MLflow refuses it (MLflow 3 refuses ./mlruns).
"""

from __future__ import annotations

OPTUNA_SEARCH_STATE = ("_ot_study", "_ot_trials", "_sampler", "_storage", "_study_name", "_completed_trials")
AUTH_LOGGER = "ray._private.authentication.authentication_token_setup"


def trial_number(trial) -> int:
    """The storage's id of an Optuna study trial (a Trial or a FrozenTrial)."""
    return trial._trial_id


def study_storage_of(study):
    """The storage an Optuna study reads and writes."""
    return study._storage


def tune_filesystem(experiment: str):
    """(pyarrow filesystem, path) of the place Tune writes an experiment to."""
    from ray.train._internal.storage import get_fs_and_path

    return get_fs_and_path(experiment, None)


def open_mlflow_store(uri: str | None):
    """Open MLflow's tracking store now (raises what MLflow raises for a store it refuses)."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)._tracking_client.store
