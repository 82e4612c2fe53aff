"""The results layout every run writes and the report reads: versioned Parquet files, written atomically.

results/<name>/
  trials.parquet   one row per trial (parameters, the delivered model's metrics, provenance)
  epochs.parquet   one row per trial and epoch
  scores.parquet   per-image test scores of every trial that has them
  samples/<trial_id>.npz  a few originals, reconstructions and (VAE) prior samples

Files are replaced by rename, trials.parquet last: a reader that takes the trial ids from
trials.parquet and filters the other files by them always sees a consistent snapshot.
"""

from __future__ import annotations

import hashlib
import json
import math
import subprocess
import time
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

import hamtune
from hamtune.errors import HamtuneError, first_line
from hamtune.files import atomic_file, check_regular, read_npz, read_text
from hamtune.paths import in_results
from hamtune.results.layout import DISTRIBUTIONS, EPOCHS, SAMPLES, SCORES, TRIALS

SCHEMA_VERSION = 2  # 2: a trial's metrics are its best validation epoch's (1: its last epoch's)
SCHEMA_KEY = b"hamtune_schema_version"
STATUSES = ("completed", "stopped", "diverged", "failed")
RUNTIME_KEYS = ("status", "reason")


@lru_cache(maxsize=1)
def git_commit() -> str | None:
    """The commit of the hamtune checkout, when it is one (provenance for every row)."""
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=Path(hamtune.__file__).parent, capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def is_better(value: float | None, best: float | None, mode: str) -> bool:
    """Finite and strictly better than `best` (None: nothing yet), so ties keep the earlier epoch."""
    if value is None or not math.isfinite(value):
        return False
    return best is None or (value > best if mode == "max" else value < best)


def delivered_epoch(history: list[dict], metric: str, mode: str) -> dict:
    """The epoch a run delivers: its best by the objective, else (no finite value) its last; {} without epochs."""
    return best_epoch(history, metric, mode) or (history[-1] if history else {})


def best_epoch(history: list[dict], metric: str, mode: str) -> dict:
    """The epoch a run delivers: the best value of the validation objective (ties: the earliest); {}
    when none is finite."""
    best: dict = {}
    for row in history:
        if is_better(row.get(metric), best.get(metric), mode):
            best = row
    return best


def test_identity(params: dict, data_manifest: dict, test_manifest: dict | None) -> dict:
    """Name and fingerprint of the images and labels a trial's test metrics come from: the test set,
    the protocol that labels it and, for a split of the main data, the split that chose it. Only trials
    with the same identity are ranked together."""
    protocol = params.get("protocol")
    if test_manifest is not None:
        name, basis = f"{test_manifest.get('name')} ({protocol})", [test_manifest.get("fingerprint"), "external"]
    else:
        split = [params.get(k) for k in ("split", "split_seed", "val_fraction", "test_fraction")]
        name = f"{data_manifest.get('name')}:test-split ({protocol}, split seed {params.get('split_seed')})"
        basis = [data_manifest.get("fingerprint"), *split]
    digest = hashlib.blake2b(json.dumps([*basis, protocol], default=str).encode(), digest_size=16).hexdigest()
    return {
        "test_set": name,
        "test_fingerprint": digest,
        "test_data_fingerprint": test_manifest.get("fingerprint") if test_manifest else None,
    }


def trial_row(
    *,
    sweep: str,
    trial_id: str,
    status: str,
    reason: str,
    params: dict,
    history: list[dict],
    objective: tuple[str, str],
    wall_time_s: float,
    device: str | None,
    data_manifest: dict,
    test_manifest: dict | None = None,
    n_params: int | None = None,
    checkpoint: str | None = None,
    extra: dict | None = None,
) -> dict:
    """One trials.parquet row: parameters (None where not applicable), the metrics of the model the
    trial delivers (its best validation epoch by the objective; the last epoch when none is finite),
    and provenance."""
    if status not in STATUSES:
        raise ValueError(f"unknown status {status!r}")
    best, delivered = best_epoch(history, *objective), delivered_epoch(history, *objective)
    row = {"schema_version": SCHEMA_VERSION, "sweep": sweep, "trial_id": trial_id, "status": status, "reason": reason or None}
    row.update(params)
    row.update({k: v for k, v in delivered.items() if k not in RUNTIME_KEYS and k != "epoch"})
    row["best_epoch"] = best.get("epoch")
    row.update(
        objective_metric=objective[0],
        objective_mode=objective[1],
        epochs_run=len(history),
        wall_time_s=wall_time_s,
        time_per_epoch_s=float(np.mean([h["epoch_time_s"] for h in history])) if history else None,
        device=device,
        n_params=n_params,
        hamtune_version=hamtune.__version__,
        git_commit=git_commit(),
        data_name=data_manifest.get("name"),
        data_fingerprint=data_manifest.get("fingerprint"),
        data_path=data_manifest.get("path"),
        test_path=(test_manifest or {}).get("path"),
        **test_identity(params, data_manifest, test_manifest),
        checkpoint=checkpoint,
        finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    )
    row.update(extra or {})
    return row


def write_parquet(frame: pd.DataFrame, path: Path) -> None:
    table = pa.Table.from_pandas(frame, preserve_index=False)
    table = table.replace_schema_metadata({**(table.schema.metadata or {}), SCHEMA_KEY: str(SCHEMA_VERSION).encode()})
    with atomic_file(path) as tmp:
        pq.write_table(table, tmp)


def read_parquet(path: Path) -> pd.DataFrame:
    """Read one of our files; a damaged file or another schema version is an error naming the file."""
    try:  # one open file: a writer's os.replace between pyarrow's footer and data reads cannot mix two files
        check_regular(path, None)
        with open(path, "rb") as handle:
            table = pq.read_table(handle)
    except FileNotFoundError:
        raise HamtuneError(f"{path}: not found") from None
    except (pa.ArrowException, OSError) as exc:
        raise HamtuneError(f"{path}: unreadable or truncated Parquet file ({first_line(exc, 160)})") from None
    version = (table.schema.metadata or {}).get(SCHEMA_KEY)
    if version is None or not version.strip().isdigit() or int(version) != SCHEMA_VERSION:
        found = version.decode() if version else "none"
        raise HamtuneError(f"{path}: results schema version {found}, this hamtune reads version {SCHEMA_VERSION}")
    return table.to_pandas()


class ResultsWriter:
    """Upserts trials by trial_id into the results folder; safe to reopen after a crash or a resume."""

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        (self.directory / SAMPLES).mkdir(parents=True, exist_ok=True)
        self.trials = self._existing(TRIALS)
        self.epochs = self._existing(EPOCHS)
        self.scores = self._existing(SCORES)

    def _existing(self, name: str) -> pd.DataFrame:
        path = self.directory / name
        return read_parquet(path) if path.exists() else pd.DataFrame()

    @staticmethod
    def _upsert(frame: pd.DataFrame, rows: pd.DataFrame, trial_id: str) -> pd.DataFrame:
        if len(frame):
            frame = frame[frame["trial_id"] != trial_id]
        parts = [f for f in (frame, rows) if len(f)]
        return pd.concat(parts, ignore_index=True) if parts else pd.DataFrame()

    def add(self, row: dict, history: list[dict], scores: pd.DataFrame | None, samples: dict[str, np.ndarray] | None) -> None:
        """Record one finished trial (replacing an earlier record of the same trial)."""
        trial_id = row["trial_id"]
        if samples:
            with atomic_file(self.directory / SAMPLES / f"{trial_id}.npz") as tmp:
                np.savez_compressed(tmp, **samples)  # type: ignore[arg-type]  # mypy matches **samples against the stub's allow_pickle: bool
        if scores is not None and len(scores):
            scores = scores.assign(sweep=row["sweep"], trial_id=trial_id)
            self.scores = self._upsert(self.scores, scores, trial_id)
            write_parquet(self.scores, self.directory / SCORES)
        epochs = pd.DataFrame([{k: v for k, v in h.items() if k != "reason"} for h in history])
        if len(epochs):
            epochs.insert(0, "trial_id", trial_id)
            epochs.insert(0, "sweep", row["sweep"])
        self.epochs = self._upsert(self.epochs, epochs, trial_id)
        if len(self.epochs):
            write_parquet(self.epochs, self.directory / EPOCHS)
        self.trials = self._upsert(self.trials, pd.DataFrame([row]), trial_id)
        write_parquet(self.trials, self.directory / TRIALS)


def load_results(directory: Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """trials, epochs and scores of one results folder, as one consistent snapshot."""
    directory = Path(directory)
    if not directory.is_dir():
        raise HamtuneError(f"{directory}: no such results folder")
    if not (directory / TRIALS).exists():
        raise HamtuneError(f"{directory}: no {TRIALS} (has a sweep or `hamtune train` written here yet?)")
    trials = read_parquet(directory / TRIALS)
    if "trial_id" not in trials.columns:
        raise HamtuneError(f"{directory / TRIALS}: not a hamtune trials file (no trial_id column)")
    if "checkpoint" in trials:  # stored relative to the results folder: this folder's own checkpoints
        trials["checkpoint"] = trials["checkpoint"].map(lambda path: in_results(path, directory))
    ids = set(trials["trial_id"])
    frames = []
    for name in (EPOCHS, SCORES):
        path = directory / name
        frame = read_parquet(path) if path.exists() else pd.DataFrame(columns=["trial_id"])
        frames.append(frame[frame["trial_id"].isin(ids)].reset_index(drop=True))
    return trials, frames[0], frames[1]


def write_distributions(directory: Path, declared: dict[str, str]) -> None:
    """Keep the space's declared distributions beside the results, so importance is computed on them, not on guesses."""
    with atomic_file(Path(directory) / DISTRIBUTIONS) as tmp:
        tmp.write_text(json.dumps(declared, indent=1, sort_keys=True))


def read_distributions(directory: Path) -> dict[str, str]:
    """Parameter -> Optuna distribution JSON as the sweep declared it; {} for a folder without a space (train, baselines)."""
    path = Path(directory) / DISTRIBUTIONS
    if not path.exists():
        return {}
    try:
        declared = json.loads(read_text(path))
    except (OSError, ValueError) as exc:
        raise HamtuneError(
            f"{path}: unreadable ({first_line(exc, 120)}); delete it to fall back to distributions read from the values"
        ) from None
    if not isinstance(declared, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in declared.items()):
        raise HamtuneError(f"{path}: not a mapping of parameter names to Optuna distribution JSON; delete it or rerun the sweep")
    return declared


def load_samples(directory: Path, trial_id: str) -> dict[str, np.ndarray]:
    return read_npz(Path(directory) / SAMPLES / f"{trial_id}.npz")
