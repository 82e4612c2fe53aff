"""hamtune: hyperparameter search for autoencoders and VAEs on HAM10000 skin lesions.

The Python API (what the `hamtune` command does, as functions; see docs/integrations.md):

    import hamtune
    folder = hamtune.train_model("cnn-ae", data="synthetic", epochs=5)  # or hamtune.run_sweep("search_spaces/quick.yaml"): Results
    results = hamtune.open_results(folder)                               # .trials .epochs .scores .best .leaderboard()
    trials, epochs, scores = hamtune.load_results(folder)
    board = hamtune.rank(folder)                                         # chosen on validation, reporting test_auroc
    html = hamtune.write_report(folder)                                  # the self-contained HTML report
    bundle = hamtune.export_model(folder, "models/best", formats=("torch", "onnx"))
    table = hamtune.score(bundle, "photos/")                             # image, score, flagged
    hamtune.verify(bundle, program="onnx")                               # the golden vectors, recomputed

Names load on first use (hamtune.api), so `import hamtune` stays cheap: no torch, Ray or pandas until then.
(hamtune.sweep, .train, .report and .export are the subpackages, hence run_sweep, train_model... here.)
"""

__version__ = "0.2.0"

API = (
    "synthesize_data",
    "prepare_data",
    "run_sweep",
    "train_model",
    "run_baselines",
    "build_ensemble",
    "reproduce",
    "run_demo",
    "load_results",
    "open_results",
    "Results",
    "rank",
    "configurations",
    "deliver_confirmed",
    "write_report",
    "make_report",
    "export_model",
    "export_trial",
    "score",
    "write_scores",
    "verify",
    "load_space",
    "data_info",
    "stress_test",
    "HamtuneError",
)
__all__ = ["__version__", *API]


def __getattr__(name: str):
    """PEP 562: the API's functions are imported from hamtune.api the first time one is used."""
    if name in API:
        import importlib

        module = importlib.import_module("hamtune.errors" if name == "HamtuneError" else "hamtune.api")
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'hamtune' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(API))
