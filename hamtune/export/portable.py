"""Portable programs of an exported model: a `torch.export` program (model.pt2) and ONNX (model.onnx).

Each holds the model's forward (image batch -> reconstruction, code, log-variance), with a dynamic
batch size. `hamtune score --format onnx|torch-export` runs the program in place of the PyTorch
module and computes the score with the very functions the evaluation used (score_images), so the
scores agree with the PyTorch bundle's to float precision. What the score fitted besides the
weights (score.pt: latent Gaussian, standardisation) is read from the bundle as always.
"""

from __future__ import annotations

import numpy as np
import torch

from hamtune.errors import HamtuneError, first_line
from hamtune.export.bundle import META, PROGRAMS, Bundle, EnsembleBundle, bundle_version
from hamtune.export.programs import OUTPUTS, check_formats, check_program, onnx_modules


def _single(bundle: Bundle | EnsembleBundle, fmt: str) -> Bundle:
    if isinstance(bundle, EnsembleBundle):
        raise HamtuneError(f"{bundle.path}: an ensemble exports and scores as --format torch only; "
                           f"export its members one by one for {fmt}")
    return bundle


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


def program_model(bundle: Bundle, fmt: str, device: torch.device) -> ProgramModel:
    """The bundle's exported program, ready to stand in for its PyTorch model."""
    path = bundle.path / PROGRAMS[fmt]
    if not path.exists():
        raise HamtuneError(f"{path}: missing; export the model with --format {fmt} (hamtune export RESULTS --out DIR --format {fmt})")
    variational = bundle.config.kind == "vae"
    if fmt == "torch-export":
        if bundle_version(bundle.info, bundle.path / META) < 3:
            raise HamtuneError(f"{path}: from a bundle without digests (bundle version {bundle.info['bundle_version']}), "
                               "so its program is not loaded; export the model again (torch scoring still works)")
        check_program(path)
        try:
            program = torch.export.load(path).module().to(device)
        except Exception as exc:
            raise HamtuneError(f"{path}: not a readable torch.export program ({first_line(exc, 200)})") from None
        return ProgramModel(lambda x: program(x), variational)
    ort = onnx_modules()
    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:
        raise HamtuneError(f"{path}: not a readable ONNX model ({first_line(exc, 200)})") from None
    inputs, outputs = [i.name for i in session.get_inputs()], [o.name for o in session.get_outputs()]
    if inputs != ["x"] or not set(OUTPUTS) <= set(outputs):
        raise HamtuneError(f"{path}: takes {inputs} and gives {outputs}; a hamtune model takes ['x'] and gives "
                           f"{list(OUTPUTS)}, so export the model again with --format onnx")

    def run(x: torch.Tensor):
        outputs = session.run(list(OUTPUTS), {"x": np.ascontiguousarray(x.detach().float().cpu().numpy())})
        return [torch.from_numpy(np.asarray(o)) for o in outputs]

    return ProgramModel(run, variational)


def scorer(bundle: Bundle | EnsembleBundle, fmt: str, device: torch.device):
    """The bundle's scorer running the program of format `fmt` ("torch": the PyTorch module itself)."""
    check_formats((fmt,))
    if fmt == "torch":
        return bundle.scorer(device)
    return _single(bundle, fmt).scorer(device, model=program_model(bundle, fmt, device))
