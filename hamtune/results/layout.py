"""Every entry of a results folder, named once. What each holds and which module writes it; readers and writers
import the name from here. Plain strings only (no pandas): the gate, the command line and the report's loaders
import it, and none of them should pay for what they do not read.

results/<name>/
  trials.parquet      one row per trial: parameters, the delivered model's metrics, provenance   results.store
  epochs.parquet      one row per trial and epoch                                                results.store
  scores.parquet      per-image scores of every trial that has them                              results.store
  samples/            a few originals and reconstructions per trial (<trial_id>.npz)             results.store
  chosen.json         the chosen model: the rule, the row, its members                            results.chosen
  sweep.json          how the sweep was run: the exact command, space, versions                   sweep.provenance
  confirm.json        the confirm stage's plan: which configurations get which seeds              sweep.confirm
  distributions.json  the space's Optuna distributions, by parameter                              results.store
  optuna.db           the Optuna study of the search trials (SQLite)                             sweep.study
  reproduce.parquet   `hamtune reproduce`'s runs                                                 sweep.tune.reproduce
  stress.parquet      `hamtune stress`'s rows                                                    export.stress
  report.html         `hamtune report`'s page                                                    report.command
  tune/, tuner.pkl    Ray Tune's experiment and the digests checked before it is restored         sweep.tune.runner, .trust
  checkpoints/        one folder per trial                                                       train, sweep
  .lock               the one-writer lock                                                        paths
"""

from __future__ import annotations

TRIALS = "trials.parquet"
EPOCHS = "epochs.parquet"
SCORES = "scores.parquet"
SAMPLES = "samples"
CHOSEN = "chosen.json"
RECORD = "sweep.json"
PLAN = "confirm.json"
DISTRIBUTIONS = "distributions.json"
STUDY_DB = "optuna.db"
REPRODUCE = "reproduce.parquet"
STRESS = "stress.parquet"
HTML_NAME = "report.html"
EXPERIMENT = "tune"
TUNER = "tuner.pkl"
CHECKPOINTS = "checkpoints"
REPRODUCE_RUNS = "reproduce"
SPACE_COPY = "space.yaml"

# what tells a results folder apart (the output gate refuses to write inside one that is not the writer's own)
RESULTS_FILES = (TRIALS, RECORD, PLAN, EPOCHS, CHOSEN, TUNER)
RESULTS_SUBFOLDERS = (EXPERIMENT, CHECKPOINTS, SAMPLES, REPRODUCE_RUNS, STUDY_DB, DISTRIBUTIONS, SPACE_COPY)

DEFAULT_OBJECTIVE = ("val_auroc", "max")  # (validation metric, "max" | "min"): what every run and sweep chooses by unless told
