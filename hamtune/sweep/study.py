"""The Optuna study (optuna.db in the results folder): the SEARCH, as the sampler saw it, for optuna-dashboard.

What it holds: the searched trials only, each linked to its trials.parquet row by the user attribute
`trial_id`; its values are named after the objectives (`set_metric_names`, not "Objective 0"). What it does
not hold: a confirm stage's seeds (the confirming searcher hands them to Tune, not to Optuna), the seed ensemble
it delivers, baselines and floor rows. So `study.best_trial` is the best SEARCHED trial on one
seed, not the delivered model: the study's user attributes name that one (`record_chosen`: chosen_trial_id,
chosen_rule, chosen_metric, chosen_metrics, chosen_members, chosen_in_study), read from chosen.json, the
record the report, the leaderboard and every tracker read.

Ray's OptunaSearch tells Optuna a trial's last result when it ends: an ASHA-stopped trial becomes
COMPLETE (it marks PRUNED only when the value is None), a diverged one is told NaN and stays RUNNING,
and its intermediate values are Tune's iterations without the last one. hamtune's searcher (MirroredOptunaSearch,
in sweep/tune/study.py: the Tune side of this mirror) instead
reports the objective as Tune sees it (`best_<metric>`: the delivered model's value so far) at
step = epoch, and leaves the trial open when it ends; the results recorder, which decides the row's
status, then closes it (`finish_trial`): completed -> COMPLETE, stopped -> PRUNED with the delivered
value, diverged/failed -> FAIL, every epoch an intermediate value, and the user attributes
`trial_id`, `status` and `results_path` linking it to its row. (Optuna refuses to change a finished
trial, hence the deferred close; the recorder runs right after the searcher in the same Tune step.)
"""

from __future__ import annotations

import logging
import math
from pathlib import Path

from hamtune.results.layout import STUDY_DB
from hamtune.results.store import is_better
from hamtune.sweep.internals import trial_number

log = logging.getLogger(__name__)


def study_url(directory: Path) -> str:
    """Where the sweep's study lives: SQLite in the results folder (what optuna-dashboard opens)."""
    return f"sqlite:///{(Path(directory) / STUDY_DB).resolve()}"


def study_storage(directory: Path):
    import optuna

    return optuna.storages.RDBStorage(study_url(directory))


def _open_trial(storage, study_name: str, trial_id: str):
    import optuna

    study_id = storage.get_study_id_from_name(study_name)
    running = storage.get_all_trials(study_id, deepcopy=False, states=(optuna.trial.TrialState.RUNNING,))
    return next((t for t in running if t.user_attrs.get("trial_id") == trial_id), None)


def delivered_curve(history: list[dict], metric: str, mode: str) -> dict[int, float]:
    """Per epoch, the objective of the model the trial would deliver had it ended there."""
    best, curve = None, {}
    for row in history:
        if is_better(row.get(metric), best, mode):
            best = float(row[metric])
        if best is not None and isinstance(row.get("epoch"), (int, float)):
            curve[int(row["epoch"])] = best
    return curve


def finish_trial(directory: Path, study_name: str, trial_id: str, status: str, row: dict, history: list[dict], objectives) -> None:
    """Close the study trial of `trial_id` as its results row says (state, values, intermediate values, attributes)."""
    import optuna

    State = optuna.trial.TrialState
    try:
        storage = study_storage(directory)
        trial = _open_trial(storage, study_name, trial_id)
    except (KeyError, ValueError, ImportError, optuna.exceptions.StorageInternalError) as exc:
        log.warning("trial %s: could not open the Optuna study in %s (%s)", trial_id, directory, exc)
        return
    if trial is None:
        return  # not hamtune's searcher (a sweep started by an older hamtune) or already closed
    single = len(objectives) == 1
    if single:
        for epoch, value in delivered_curve(history, *objectives[0]).items():
            storage.set_trial_intermediate_value(trial_number(trial), epoch, value)
    values = [row.get(metric) for metric, _ in objectives]
    numbers = [float(v) for v in values if isinstance(v, (int, float)) and math.isfinite(v)]
    finite = len(numbers) == len(values)
    told: list[float] | None
    if status == "completed" and finite:
        state, told = State.COMPLETE, numbers
    elif status == "stopped":
        state, told = State.PRUNED, numbers if single and finite else None
    else:
        state, told = State.FAIL, None
    number = trial_number(trial)
    storage.set_trial_user_attr(number, "status", status)
    storage.set_trial_user_attr(number, "results_path", str(directory))
    storage.set_trial_state_values(number, state, told)


def record_chosen(directory: Path, study_name: str) -> None:
    """The study's user attributes name the chosen model (chosen.json), its rule and metrics, and whether it is one
    of the study's trials (a seed ensemble is not); nothing where the folder has no study or no choice."""
    import optuna

    from hamtune.results.chosen import chosen_of

    chosen = chosen_of(directory)
    if chosen is None or not (Path(directory) / STUDY_DB).exists():
        return
    try:
        study = optuna.load_study(study_name=study_name, storage=study_storage(directory))
    except KeyError:
        log.warning("%s: no Optuna study %r to record the chosen model in", Path(directory) / STUDY_DB, study_name)
        return
    held = [t.number for t in study.get_trials(deepcopy=False) if t.user_attrs.get("trial_id") == chosen.trial_id]
    for key, value in {
        "chosen_trial_id": chosen.trial_id,
        "chosen_rule": chosen.rule,
        "chosen_metric": chosen.metric,
        "chosen_metrics": chosen.metrics,
        "chosen_members": list(chosen.members),
        "chosen_in_study": bool(held),
        "chosen_study_trial": held[0] if held else None,
    }.items():
        study.set_user_attr(key, value)
