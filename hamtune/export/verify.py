"""`hamtune verify BUNDLE --program P`: recompute a bundle's golden vectors (golden.npz) with one of its programs and
compare them with the scores and decisions the bundle was exported with. A port that passes takes the same tensors
to the same scores; `hamtune score` on the images' files then differs from it only by how they are decoded."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hamtune.errors import HamtuneError
from hamtune.export import PROGRAMS, SCORE_GRAPH
from hamtune.export.bundle import EnsembleBundle, load_bundle
from hamtune.export.golden import GOLDEN, TOLERANCE, first_mismatch, read_golden
from hamtune.export.portable import graph_scorer, scorer
from hamtune.export.programs import check_formats
from hamtune.train.loop import resolve_device


@dataclass
class Verified:
    """What passed: the bundle, the program(s) run, how many vectors, and the largest error (relative; absolute below 1)."""

    path: Path
    programs: list[str]
    count: int
    max_error: float


def verify_bundle(path: Path, program: str = "torch", device: str = "cpu") -> Verified:
    """Recompute the golden vectors with `program` (torch, onnx: model.onnx and score.onnx, torch-export); a score
    off by more than the tolerance, or a decision that differs, is a one-line error naming the first such vector."""
    check_formats((program,))
    bundle = load_bundle(Path(path))  # digests first: an edited golden.npz fails here unless bundle.json was resealed
    golden = read_golden(bundle.path / GOLDEN)
    target = resolve_device(device)
    if program == "torch":
        runs = [("torch (model.pt)", scorer(bundle, "torch", target))]
    elif program == "onnx":
        runs = [(SCORE_GRAPH, graph_scorer(bundle, SCORE_GRAPH, target))]
        if not isinstance(bundle, EnsembleBundle):
            runs.insert(0, (PROGRAMS["onnx"], scorer(bundle, "onnx", target)))
    else:
        runs = [(PROGRAMS[program], scorer(bundle, program, target))]
    worst = 0.0
    for name, score in runs:
        found = np.asarray(score(golden.images), dtype=np.float64)
        problem = first_mismatch(golden, found, bundle.threshold)
        if problem:
            raise HamtuneError(
                f"{bundle.path / GOLDEN}: {name} does not reproduce the golden vectors: {problem} "
                f"(tolerance {TOLERANCE:g} relative, absolute below 1)"
            )
        worst = max(worst, float(np.max(np.abs(found - golden.scores) / np.maximum(np.abs(golden.scores), 1.0))))
    return Verified(bundle.path, [name for name, _ in runs], len(golden.scores), worst)
