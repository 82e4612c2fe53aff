"""Experiment trackers (`--log-to`, `log_to:` in a space): Ray Tune's own logger callbacks, plus the results row.

Tune's callbacks log each trial's config at its start and every epoch's metrics (step = Tune's
iteration, one per epoch). When a trial ends, hamtune's recorder has already written its row
(callbacks run in order), so each tracker also logs the row's numbers as `final/<column>`: the
metrics of the model the trial delivers, as the report shows them. MLflow and W&B are optional
extras; where their runs go is theirs to configure (MLFLOW_TRACKING_URI; WANDB_PROJECT, WANDB_MODE).
TensorBoard event files are written by Tune under results/<name>/tune/<trial>/.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from ray.air.integrations.mlflow import MLflowLoggerCallback
from ray.air.integrations.wandb import WandbLoggerCallback
from ray.tune.logger import TBXLoggerCallback

from hamtune.errors import HamtuneError, first_line
from hamtune.sweep.space import TRACKERS

EXTRAS = {"mlflow": ("mlflow", "hamtune[mlflow]"), "wandb": ("wandb", "hamtune[wandb]"), "tensorboard": ("tensorboardX", "tensorboardX")}


def require(name: str) -> None:
    """The tracker's package is installed, or a one-line error naming the install command."""
    if name not in TRACKERS:
        raise HamtuneError(f"--log-to {name}: unknown tracker; choose from {', '.join(TRACKERS)}")
    module, extra = EXTRAS[name]
    try:
        __import__(module)
    except ImportError:
        raise HamtuneError(f'--log-to {name} needs its package: pip install "{extra}"') from None


def final_metrics(directory: Path, trial_id: str) -> dict[str, float]:
    """The numbers of a trial's results row, as `final/<column>` (nothing when the row is not there)."""
    from hamtune.results.store import TRIALS, read_parquet

    path = Path(directory) / TRIALS
    if not path.exists():
        return {}
    trials = read_parquet(path)
    rows = trials[trials["trial_id"] == trial_id]
    if not len(rows):
        return {}
    row = rows.iloc[-1]
    out = {}
    for column, value in row.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            out[f"final/{column}"] = float(value)
    return out


class _FinalRow:
    """Mixed into a Tune LoggerCallback: logs the trial's results row just before Tune closes its run."""

    results_dir: Path

    def log_trial_end(self, trial, failed: bool = False) -> None:
        row = final_metrics(self.results_dir, trial.trial_id)
        if row:
            step = (trial.last_result or {}).get("training_iteration", 0)
            self.log_trial_result(step, trial, {**row, "training_iteration": step})
        super().log_trial_end(trial, failed)


class MLflowRows(_FinalRow, MLflowLoggerCallback):
    """Tune's MLflow callback, plus the results row at each trial's end."""


class WandbRows(_FinalRow, WandbLoggerCallback):
    """Tune's Weights & Biases callback, plus the results row at each trial's end."""


def check_mlflow(uri: str | None) -> None:
    """Open MLflow's tracking store now, so a store it refuses (MLflow 3 refuses the file store: file:// and
    plain paths) is one line before the sweep starts, not a traceback from inside Tune."""
    import mlflow

    try:
        mlflow.MlflowClient(tracking_uri=uri)._tracking_client.store  # noqa: B018 (creating the store is the check)
    except Exception as exc:
        raise HamtuneError(
            f"--log-to mlflow: MLflow {mlflow.__version__} refuses MLFLOW_TRACKING_URI={uri or '(unset: ./mlruns)'} "
            f"({first_line(exc, 140)}); set MLFLOW_TRACKING_URI=sqlite:///mlflow.db or an http:// server"
        ) from None


def tracker_callbacks(names: tuple[str, ...], directory: Path, sweep: str) -> list:
    """Tune logger callbacks for `names`; each package is checked first."""
    for name in names:
        require(name)
    callbacks: list = []
    for name in names:
        if name == "tensorboard":
            callbacks.append(TBXLoggerCallback())
            continue
        if name == "mlflow":
            check_mlflow(os.environ.get("MLFLOW_TRACKING_URI"))
            callback = MLflowRows(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"), experiment_name=sweep,
                                  tags={"hamtune_sweep": sweep, "hamtune_results": str(directory)})
        else:
            callback = WandbRows(project=os.environ.get("WANDB_PROJECT", "hamtune"), group=sweep)
        callback.results_dir = Path(directory)
        callbacks.append(callback)
    return callbacks
