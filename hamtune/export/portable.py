"""Portable programs of an exported model: a `torch.export` program (model.pt2) and ONNX (model.onnx).

Each holds the model's forward (image batch -> reconstruction, code, log-variance), with a dynamic
batch size. `hamtune score --format onnx|torch-export` runs the program in place of the PyTorch
module and computes the score with the very functions the evaluation used (score_images), so the
scores agree with the PyTorch bundle's to float precision. What the score fitted besides the
weights (score.pt: latent Gaussian, standardisation) is read from the bundle as always.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import torch

from hamtune.errors import HamtuneError, first_line
from hamtune.export import FORMATS
from hamtune.export.bundle import META, PROGRAMS, Bundle, EnsembleBundle, bundle_version, load_bundle
from hamtune.export.programs import check_program
from hamtune.files import atomic_file

OUTPUTS = ("recon", "mu", "logvar")
ONNX_EXTRA = 'ONNX export and scoring need the optional extra: pip install "hamtune[onnx]"'


def _check(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise HamtuneError(f"--format {unknown[0]}: unknown; choose from {', '.join(FORMATS)}")


def require(formats: tuple[str, ...]) -> None:
    """Known formats whose packages are installed: checked before anything is written."""
    _check(formats)
    if "onnx" in formats:
        _onnx_modules()


def _single(bundle: Bundle | EnsembleBundle, fmt: str) -> Bundle:
    if isinstance(bundle, EnsembleBundle):
        raise HamtuneError(f"{bundle.path}: an ensemble exports and scores as --format torch only; "
                           f"export its members one by one for {fmt}")
    return bundle


def _example(bundle: Bundle) -> torch.Tensor:
    pre = bundle.preprocess
    return torch.rand(2, pre.channels, pre.size, pre.size)


def programs_wanted(formats) -> list[str]:
    """The programs `formats` asks for besides the weights ("torch"), checked (known, packages installed) before
    anything is written."""
    if isinstance(formats, str) or not all(isinstance(f, str) for f in formats):
        raise HamtuneError(f"formats must be a list of format names ({', '.join(FORMATS)}), got {formats!r}")
    require(tuple(formats))
    return [f for f in dict.fromkeys(formats) if f != "torch"]


def write_programs(folder: Path, wanted: list[str]) -> list[Path]:
    """Add the programs to a bundle folder being written. Each is built in memory and written by Python, so a
    full disk is an OSError (one line from the CLI) rather than an abort inside torch's zip writer."""
    bundle = _single(load_bundle(folder), wanted[0])
    model, example, written = bundle.model("cpu"), _example(bundle), []
    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    for fmt in wanted:
        out = Path(folder) / PROGRAMS[fmt]
        try:
            with atomic_file(out) as tmp:
                if fmt == "torch-export":
                    buffer = io.BytesIO()
                    torch.export.save(torch.export.export(model, (example,), dynamic_shapes=({0: batch},)), buffer)
                    tmp.write_bytes(buffer.getvalue())
                else:
                    _onnx_modules()
                    torch.onnx.export(model, (example,), tmp, input_names=["x"], output_names=list(OUTPUTS),
                                      dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False)
        except (HamtuneError, OSError):
            raise
        except Exception as exc:  # a model torch cannot export: say which and why, in one line
            raise HamtuneError(f"{out}: could not export the model as {fmt} ({first_line(exc, 200)})") from None
        written.append(out)
    return written


def _onnx_modules():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError:
        raise HamtuneError(ONNX_EXTRA) from None
    return onnxruntime


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
    ort = _onnx_modules()
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
    _check((fmt,))
    if fmt == "torch":
        return bundle.scorer(device)
    return _single(bundle, fmt).scorer(device, model=program_model(bundle, fmt, device))
