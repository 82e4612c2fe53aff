"""Checkpoints as plain files: weights (loaded with weights_only=True), config JSON, history, scores, samples."""

from __future__ import annotations

import io
import json
import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hamtune.errors import HamtuneError, first_line
from hamtune.files import check_regular, read_npz, read_text

WEIGHTS, TRAINER, CONFIG, HISTORY, SCORES, SAMPLES, BEST, SCORE_STATE = (
    "model.pt",
    "trainer.pt",
    "config.json",
    "history.json",
    "scores.parquet",
    "samples.npz",
    "best.pt",
    "score.pt",
)
RESUME_FILES = (WEIGHTS, TRAINER, CONFIG, HISTORY)  # always written; the rest exist once an epoch was best
# model.pt is the last epoch's weights (to resume training); best.pt, score.pt, scores.parquet and
# samples.npz describe the model the run delivers: its best validation epoch.


def save_tensors(value, path: Path) -> None:
    """torch.save through memory, then one Python write: a full disk is an OSError (ENOSPC, one line from the
    CLI), not torch's "unexpected pos" RuntimeError from inside its zip writer."""
    buffer = io.BytesIO()
    torch.save(value, buffer)
    Path(path).write_bytes(buffer.getvalue())


def save_checkpoint(
    directory: Path,
    model_state: dict,
    trainer_state: dict,
    config: dict,
    history: list[dict],
    scores: pd.DataFrame | None = None,
    samples: dict[str, np.ndarray] | None = None,
    best_weights: dict | None = None,
    score_state: dict | None = None,
) -> Path:
    """Write one checkpoint folder; everything in it can be read without unpickling code."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_tensors(model_state, directory / WEIGHTS)
    save_tensors(trainer_state, directory / TRAINER)
    (directory / CONFIG).write_text(json.dumps(config, indent=1))
    (directory / HISTORY).write_text(json.dumps(history, allow_nan=True))
    if scores is not None:
        scores.to_parquet(directory / SCORES, index=False)
    if samples:
        np.savez_compressed(directory / SAMPLES, **samples)  # type: ignore[arg-type]  # mypy matches **samples against the stub's allow_pickle: bool
    if best_weights is not None:
        save_tensors(best_weights, directory / BEST)
        save_tensors(score_state or {}, directory / SCORE_STATE)
    return directory


def delivered_weights(directory: Path) -> Path:
    """The weights a checkpoint delivers: its best validation epoch's, or the last epoch's in a
    checkpoint written before hamtune kept the best."""
    best = Path(directory) / BEST
    return best if best.exists() else Path(directory) / WEIGHTS


def load_score_state(directory: Path) -> dict:
    path = Path(directory) / SCORE_STATE
    return load_weights(path) if path.exists() else {}


def load_weights(path: Path, device: str | torch.device = "cpu") -> dict:
    """Load tensors only; a file carrying pickled code is refused, never executed."""
    try:
        check_regular(path, None)  # a link to /dev/zero is not a weights file (and would never end)
        return torch.load(path, map_location=device, weights_only=True)
    except FileNotFoundError:
        raise HamtuneError(f"{path}: checkpoint file not found") from None
    except pickle.UnpicklingError as exc:
        if "weights_only" in str(exc) or "Weights only" in str(exc):  # torch's advice (weights_only=False) would run it
            raise HamtuneError(
                f"{path}: refused to load, it holds pickled objects other than tensors, which could run code; hamtune "
                "never writes such a file, so do not load it with weights_only=False: export or train the model again"
            ) from None
        raise HamtuneError(f"{path}: refused to load, not a plain weights file or truncated ({first_line(exc, 200)})") from None
    except (RuntimeError, EOFError, ValueError, OSError, AttributeError) as exc:
        first = first_line(exc, 200) or type(exc).__name__
        raise HamtuneError(f"{path}: refused to load, not a plain weights file or truncated ({first})") from None


def read_json(path: Path):
    try:
        return json.loads(read_text(Path(path)))
    except FileNotFoundError:
        raise HamtuneError(f"{path}: not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HamtuneError(f"{path}: unreadable JSON ({exc})") from None


def load_samples(directory: Path) -> dict[str, np.ndarray]:
    return read_npz(Path(directory) / SAMPLES)


def load_history(directory: Path) -> tuple[list[dict], pd.DataFrame | None]:
    """A checkpoint's per-epoch history and, when it has them, its per-image test scores."""
    directory = Path(directory)
    history = read_json(directory / HISTORY)
    scores = pd.read_parquet(directory / SCORES) if (directory / SCORES).exists() else None
    return history, scores


KEEP_CHECKPOINTS = ("all", "best", "none")


def shrink(directory: Path, keep: str) -> int:
    """What a finished trial keeps of its checkpoint, in bytes freed. 'best': the delivered weights and what
    export, ensemble and reproduce read (config, history, scores, samples, score state), not the last epoch's
    weights nor the optimiser state, which only resuming needs; 'none': no weights at all; 'all': everything."""
    drop = {
        "all": (),
        "best": (TRAINER, WEIGHTS) if (Path(directory) / BEST).exists() else (TRAINER,),
        "none": (TRAINER, WEIGHTS, BEST, SCORE_STATE),
    }[keep]
    freed = 0
    for name in drop:
        path = Path(directory) / name
        if path.is_file() and not path.is_symlink():
            freed += path.stat().st_size
            path.unlink()
    return freed
