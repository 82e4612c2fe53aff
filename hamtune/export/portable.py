"""Portable programs of an exported model: a `torch.export` program (model.pt2) and ONNX (model.onnx).

Each holds the model's forward (image batch -> reconstruction, code, log-variance), with a dynamic
batch size. `hamtune score --format onnx|torch-export` runs the program in place of the PyTorch
module and computes the score with the very functions the evaluation used (score_images), so the
scores agree with the PyTorch bundle's to float precision. What the score fitted besides the
weights (score.pt: latent Gaussian, standardisation) is read from the bundle as always. An ensemble's
programs are its whole score as one graph of uint8 images (score.onnx, model.pt2), run as they are.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from hamtune.errors import HamtuneError, first_line
from hamtune.export import SCORE_GRAPH
from hamtune.export.bundle import META, PROGRAMS, Bundle, EnsembleBundle, Scorer, bundle_version
from hamtune.export.programs import OUTPUTS, check_formats, check_onnx, check_program, onnx_modules

GRAPH_BATCH = 64  # images per run of a whole-score graph (an ensemble runs every member and flip at once)


class ProgramModel:
    """Stands in for the Autoencoder in score_images: called on a batch, it returns the program's
    (reconstruction, code, log-variance) as tensors on the batch's device."""

    training = False

    def __init__(self, run, variational: bool):
        self._run, self.variational = run, variational

    def eval(self) -> ProgramModel:
        return self

    def train(self, mode: bool = True) -> ProgramModel:
        return self

    def encode(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        _, mu, logvar = self(x)
        return mu, logvar if self.variational else None

    def __call__(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return tuple(t.to(x.device) for t in self._run(x))


def _load_pt2(bundle: Bundle | EnsembleBundle, path: Path, device: torch.device):
    """A bundle's torch.export program, inspected before torch reads it (export/programs.check_program)."""
    if not path.exists():
        raise HamtuneError(
            f"{path}: missing; export the model with --format torch-export (hamtune export RESULTS --out DIR --format torch-export)"
        )
    if bundle_version(bundle.info, bundle.path / META) < 3:
        raise HamtuneError(
            f"{path}: from a bundle without digests (bundle version {bundle.info['bundle_version']}), "
            "so its program is not loaded; export the model again (torch scoring still works)"
        )
    check_program(path)
    try:
        return torch.export.load(path).module().to(device)
    except Exception as exc:
        raise HamtuneError(f"{path}: not a readable torch.export program ({first_line(exc, 200)})") from None


def _session(path: Path, fmt: str = "onnx"):
    ort = onnx_modules()
    if not path.exists():
        raise HamtuneError(f"{path}: missing; export the model with --format {fmt} (hamtune export RESULTS --out DIR --format {fmt})")
    try:
        return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise HamtuneError(f"{path}: not a readable ONNX model ({first_line(exc, 200)})") from None


def program_model(bundle: Bundle, fmt: str, device: torch.device) -> ProgramModel:
    """The bundle's exported program, ready to stand in for its PyTorch model."""
    path = bundle.path / PROGRAMS[fmt]
    variational = bundle.config.kind == "vae"
    if fmt == "torch-export":
        program = _load_pt2(bundle, path, device)
        return ProgramModel(lambda x: program(x), variational)
    for program in (path, bundle.path / SCORE_GRAPH):  # score.onnx too: docs/integrations.md runs it without hamtune
        if program.exists():
            check_onnx(program, bundle.preprocess)
    session = _session(path)

    def run(x: torch.Tensor):
        outputs = run_limited(session, list(OUTPUTS), {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())}, path)
        return [torch.from_numpy(np.asarray(o)) for o in outputs]

    return ProgramModel(run, variational)


RUN_LIMIT_S = 600.0  # one batch of at most score.CHUNK images through one of hamtune's models takes seconds


def run_limited(session, outputs: list[str], feed: dict, path: Path, limit: float = RUN_LIMIT_S) -> list:
    """session.run in a worker thread that onnxruntime's own terminate flag stops: after `limit` seconds (a HamtuneError)
    or on Ctrl-C (KeyboardInterrupt, raised once the run has stopped), so no program runs on without end."""
    import threading

    from onnxruntime import RunOptions

    options, done, box = RunOptions(), threading.Event(), {}

    def work() -> None:
        try:
            box["outputs"] = session.run(outputs, feed, options)
        except Exception as exc:  # the terminate flag ends the run with an exception
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="hamtune-onnx", daemon=True)
    worker.start()
    try:
        finished = done.wait(limit)
    except BaseException:
        options.terminate = True
        done.wait(10)
        raise
    if not finished:
        options.terminate = True
        done.wait(10)
        raise HamtuneError(
            f"{path}: still running after {limit:g} s on one batch; stopped (a program that does not end is not one hamtune exported)"
        )
    if "error" in box:
        raise HamtuneError(f"{path}: onnxruntime could not run it ({first_line(box['error'], 200)})")
    return box["outputs"]


def graph_scorer(bundle: Bundle | EnsembleBundle, program: str, device: torch.device) -> Scorer:
    """The scorer of a whole-score program of uint8 images: score.onnx, or an ensemble's model.pt2 (its one graph)."""
    if program == SCORE_GRAPH:
        path = bundle.path / SCORE_GRAPH
        if path.exists():
            check_onnx(path, bundle.preprocess)
        session = _session(path)

        def run(images: np.ndarray) -> np.ndarray:
            return run_limited(session, ["score"], {"images": np.ascontiguousarray(images, dtype=np.uint8)}, path)[0]
    else:
        module = _load_pt2(bundle, bundle.path / PROGRAMS["torch-export"], device)

        def run(images: np.ndarray) -> np.ndarray:
            with torch.no_grad():
                out = module(torch.from_numpy(np.array(images, dtype=np.uint8)).to(device))
            return (out[0] if isinstance(out, (tuple, list)) else out).float().cpu().numpy()

    def score(images: np.ndarray) -> np.ndarray:
        parts = [run(images[s : s + GRAPH_BATCH]) for s in range(0, len(images), GRAPH_BATCH)]
        return np.concatenate(parts).astype(np.float64) if parts else np.zeros(0)

    return score


def scorer(bundle: Bundle | EnsembleBundle, fmt: str, device: torch.device) -> Scorer:
    """The bundle's scorer running the program of format `fmt` ("torch": the PyTorch module itself); an ensemble
    runs its one-graph program (score.onnx, model.pt2)."""
    check_formats((fmt,))
    if fmt == "torch":
        return bundle.scorer(device)
    if isinstance(bundle, EnsembleBundle):
        return graph_scorer(bundle, SCORE_GRAPH if fmt == "onnx" else PROGRAMS[fmt], device)
    return bundle.scorer(device, model=program_model(bundle, fmt, device))
