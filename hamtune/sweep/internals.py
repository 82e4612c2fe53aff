"""Every private member of Optuna and MLflow that hamtune relies on, in one place, each with why (Ray's are in
sweep/tune/internals.py, behind the fence). `tests/unit/sweep/test_internals.py` checks both against the installed
versions, so an upgrade that moves one fails there, by name, rather than deep inside a sweep.

- Optuna's `Study._storage` and `Trial._trial_id` / `FrozenTrial._trial_id`: the storage and the storage's id of a
  study trial, through which study.py writes intermediate values and a finished trial's state as its results row
  says (the public API cannot tell a trial that Tune, not Optuna, runs).
- `MlflowClient()._tracking_client.store`: opening the store is the only way to learn before a sweep starts that
  MLflow refuses it (MLflow 3 refuses ./mlruns).
"""

from __future__ import annotations


def trial_number(trial) -> int:
    """The storage's id of an Optuna study trial (a Trial or a FrozenTrial)."""
    return trial._trial_id


def study_storage_of(study):
    """The storage an Optuna study reads and writes."""
    return study._storage


def open_mlflow_store(uri: str | None):
    """Open MLflow's tracking store now (raises what MLflow raises for a store it refuses)."""
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri)._tracking_client.store
