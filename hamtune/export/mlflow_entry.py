"""The code MLflow loads for a logged hamtune model ("models from code": no pickled object in the model)."""

from mlflow.models import set_model

from hamtune.export.mlflow_model import BundleModel

set_model(BundleModel())
