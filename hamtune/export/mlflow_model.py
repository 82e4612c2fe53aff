"""A hamtune bundle as an MLflow Model (pyfunc), so `mlflow.pyfunc.load_model(uri).predict(...)` and
`mlflow models serve` score images exactly as `hamtune score` does: the bundle travels inside the model as an
artifact and `predict` runs `export.score.score_inputs` on it.

Input: a DataFrame with one column `image`, each cell an image file's bytes (JPEG or PNG, as `hamtune score`
reads from disk; over REST, base64 in the `dataframe_split` JSON). Output: `score` (NaN for bytes that are
not a readable image) and `flagged` (score above the bundle's validation threshold), one row per input row.
Logging needs only mlflow-skinny; serving over HTTP needs the full `mlflow` package (hamtune[mlflow]).
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd

ARTIFACT = "model"  # the run's artifact folder holding the MLflow Model
COLUMN = "image"


def signature():
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema

    return ModelSignature(
        inputs=Schema([ColSpec("binary", COLUMN)]), outputs=Schema([ColSpec("double", "score"), ColSpec("boolean", "flagged")])
    )


class BundleModel(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined]  # mypy does not resolve mlflow.pyfunc's re-export
    """The pyfunc flavour of an exported bundle (torch weights, CPU)."""

    def load_context(self, context) -> None:
        from hamtune.export.bundle import load_bundle

        self.bundle = load_bundle(Path(context.artifacts["bundle"]))

    def predict(self, context, model_input, params=None):
        from hamtune.export.score import score_inputs

        images = model_input[COLUMN] if isinstance(model_input, pd.DataFrame) else pd.Series(list(model_input))
        with tempfile.TemporaryDirectory(prefix="hamtune-pyfunc-") as scratch:
            files = []
            for i, data in enumerate(images):  # decoded from files by the code `hamtune score` uses, so scores match it
                files.append(Path(scratch) / f"{i:08d}")
                files[-1].write_bytes(bytes(data))
            table = score_inputs(self.bundle, files, device="cpu", progress=False).table.set_index("image")
            scores = table["score"].reindex([str(f) for f in files]).to_numpy(dtype=np.float64)
        return pd.DataFrame({"score": scores, "flagged": np.nan_to_num(scores, nan=-np.inf) > self.bundle.threshold})


def save_bundle_model(bundle: Path, out: Path) -> Path:
    """Write `bundle` as an MLflow Model folder at `out` (which must not exist)."""
    import hamtune

    code = Path(__file__).with_name("mlflow_entry.py")  # models from code: the model holds no pickled object
    with warnings.catch_warnings():  # advice to add type hints or an input example: the signature is given
        warnings.filterwarnings("ignore", category=UserWarning, module="mlflow")
        mlflow.pyfunc.save_model(
            str(out),
            python_model=str(code),
            artifacts={"bundle": str(bundle)},
            signature=signature(),
            pip_requirements=[f"hamtune=={hamtune.__version__}"],
        )
    return out


def log_bundle_model(run_id: str, bundle: Path) -> str:
    """Log `bundle` as an MLflow Model under the run's `model` artifact folder (the store of MLFLOW_TRACKING_URI);
    returns its URI, runs:/<id>/model."""
    import os

    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=os.environ.get("MLFLOW_TRACKING_URI"))
    with tempfile.TemporaryDirectory(prefix="hamtune-mlflow-model-") as scratch:
        client.log_artifacts(run_id, str(save_bundle_model(bundle, Path(scratch) / ARTIFACT)), ARTIFACT)
    return f"runs:/{run_id}/{ARTIFACT}"
