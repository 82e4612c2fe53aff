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
from hamtune.export.programs import OUTPUTS, check_formats, check_program, onnx_modules

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
        raise HamtuneError(f"{path}: missing; export the model with --format torch-export "
                           "(hamtune export RESULTS --out DIR --format torch-export)")
    if bundle_version(bundle.info, bundle.path / META) < 3:
        raise HamtuneError(f"{path}: from a bundle without digests (bundle version {bundle.info['bundle_version']}), "
                           "so its program is not loaded; export the model again (torch scoring still works)")
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
    session = _session(path)
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != ["x"] or not set(OUTPUTS) <= set(outputs):
        raise HamtuneError(f"{path}: takes {inputs} and gives {outputs}; a hamtune model takes ['x'] and gives "
                           f"{list(OUTPUTS)}, so export the model again with --format onnx")

    def run(x: torch.Tensor):
        outputs = session.run(list(OUTPUTS), {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())})
        return [torch.from_numpy(np.asarray(o)) for o in outputs]

    return ProgramModel(run, variational)


def graph_scorer(bundle: Bundle | EnsembleBundle, program: str, device: torch.device) -> Scorer:
    """The scorer of a whole-score program of uint8 images: score.onnx, or an ensemble's model.pt2 (its one graph)."""
    if program == SCORE_GRAPH:
        session = _session(bundle.path / SCORE_GRAPH)
        inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
        if inputs != ["images"] or "score" not in outputs:
            raise HamtuneError(f"{bundle.path / SCORE_GRAPH}: takes {inputs} and gives {outputs}; a hamtune score graph "
                               "takes ['images'] and gives ['score', ...], so export the model again with --format onnx")

        def run(images: np.ndarray) -> np.ndarray:
            return session.run(["score"], {"images": np.ascontiguousarray(images, dtype=np.uint8)})[0]
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
