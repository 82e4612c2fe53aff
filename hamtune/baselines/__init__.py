"""Classical baselines (PCA, IsolationForest, k-NN on pixels) on exactly the deep models' splits."""

from hamtune.baselines.classical import DEFAULT_METHODS, Method, parse_method, parse_methods
from hamtune.baselines.run import run_baselines

__all__ = ["DEFAULT_METHODS", "Method", "parse_method", "parse_methods", "run_baselines"]
