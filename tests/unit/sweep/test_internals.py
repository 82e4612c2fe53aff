"""The private members of Ray, Optuna and MLflow hamtune relies on (hamtune/sweep/internals.py and, Ray's,
hamtune/sweep/tune/internals.py) exist in the installed versions and mean what hamtune takes them to mean: an upgrade
that moves one fails here, by name."""

from __future__ import annotations

import importlib
import logging

import optuna
import pytest

from hamtune.sweep import internals
from hamtune.sweep.tune import internals as ray_internals


def test_ray_tunes_optuna_search_keeps_its_state_where_the_mirror_reads_it(tmp_path):
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    storage = optuna.storages.RDBStorage(f"sqlite:///{tmp_path / 'study.db'}")
    search = OptunaSearch(space={"x": tune.uniform(0.0, 1.0)}, metric="m", mode="max", storage=storage, study_name="s")
    suggested = search.suggest("tune-1")
    assert [name for name in ray_internals.OPTUNA_SEARCH_STATE if not hasattr(search, name)] == []
    study_trial = search._ot_trials["tune-1"]
    held = internals.study_storage_of(search._ot_study)
    assert held.get_trial(internals.trial_number(study_trial)).params == suggested
    frozen = held.get_all_trials(held.get_study_id_from_name("s"))[0]
    assert internals.trial_number(frozen) == internals.trial_number(study_trial)


def test_tunes_experiment_filesystem_and_rays_authentication_logger_are_where_hamtune_looks(tmp_path):
    from pyarrow import fs

    filesystem, path = ray_internals.tune_filesystem(str(tmp_path / "experiment"))
    assert isinstance(filesystem, fs.FileSystem) and path.endswith("experiment")
    importlib.import_module(ray_internals.AUTH_LOGGER)  # the module that logs how to turn authentication off
    assert logging.getLogger(ray_internals.AUTH_LOGGER).name == ray_internals.AUTH_LOGGER


def test_tunes_callback_telemetry_is_the_function_hamtune_replaces():
    import inspect

    from ray.air._internal import usage
    from ray.tune import tune

    assert tune.air_usage is usage and "air_usage.tag_callbacks(callbacks)" in inspect.getsource(tune.run)
    ray_internals.skip_callback_telemetry()
    assert usage.tag_callbacks([object()]) is False  # counted nothing, imported no tracker integration


def test_mlflows_store_opens_for_sqlite_and_is_refused_for_the_old_file_store(tmp_path, monkeypatch):
    pytest.importorskip("mlflow", reason='the optional extra: pip install "hamtune[mlflow]"')
    monkeypatch.delenv("MLFLOW_ALLOW_FILE_STORE", raising=False)
    assert internals.open_mlflow_store(f"sqlite:///{tmp_path / 'mlflow.db'}") is not None
    from mlflow.exceptions import MlflowException

    with pytest.raises(MlflowException, match="database backend"):  # what hamtune's tracker check passes on to the user
        internals.open_mlflow_store(str(tmp_path / "mlruns"))
