"""Portable programs of a model (export/portable.py runs them): written into a bundle being exported, and a
torch.export program (model.pt2) inspected before torch reads it. torch.export.load unpickles
(weights_only=False) any weight, constant or custom object marked so, falls back to unpickling sample
inputs, loads compiled libraries (AOTInductor), resolves graph targets by attribute path from `torch`
(torch.os.system is one) and evaluates shape expressions with sympy. So a program is read only if it is
exactly what torch.export.save writes for hamtune's models: the archive's known files, tensors stored
raw (no pickle), sample inputs that load with weights_only=True, ATen operators only and shape
expressions that name plain symbols. Anything else is refused before torch.export.load is called.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import torch

from hamtune.data.images import Preprocess
from hamtune.errors import HamtuneError, first_line
from hamtune.export import FORMATS, PROGRAMS
from hamtune.files import atomic_file

OUTPUTS = ("recon", "mu", "logvar")
ONNX_EXTRA = 'ONNX export and scoring need the optional extra: pip install "hamtune[onnx]"'

NAMES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
    r"|data/weights/model_weights_config\.json|data/constants/model_constants_config\.json"
    r"|data/sample_inputs/model\.pt|data/weights/weight_\d+|data/constants/tensor_\d+)"
)
TENSOR_FILES = {"data/weights/model_weights_config.json": re.compile(r"weight_\d+"),
                "data/constants/model_constants_config.json": re.compile(r"tensor_\d+")}
TARGET = re.compile(r"torch\.ops\.aten\.\w+\.\w+|_operator\.(getitem|add|sub|mul|floordiv|truediv|neg|eq|ge|gt|le|lt)")
SYMPY_WORDS = {"Symbol", "Integer", "positive", "integer", "True", "False", "Max", "Min", "FloorDiv", "Mod",
               "CeilToInt", "FloorToInt", "PythonMod", "IntTrueDiv", "CleanDiv"}
EXPRESSION = re.compile(r"[\w\s+\-*/(),'=.]*")
MAX_UNCOMPRESSED = 8 << 30


def check_formats(formats: tuple[str, ...]) -> None:
    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise HamtuneError(f"--format {unknown[0]}: unknown; choose from {', '.join(FORMATS)}")


def onnx_modules():
    try:
        import onnx  # noqa: F401
        import onnxruntime
        import onnxscript  # noqa: F401
    except ImportError:
        raise HamtuneError(ONNX_EXTRA) from None
    return onnxruntime


def programs_wanted(formats) -> list[str]:
    """The programs `formats` asks for besides the weights ("torch"), checked (known, packages installed) before
    anything is written."""
    if isinstance(formats, str) or not all(isinstance(f, str) for f in formats):
        raise HamtuneError(f"formats must be a list of format names ({', '.join(FORMATS)}), got {formats!r}")
    check_formats(tuple(formats))
    if "onnx" in formats:
        onnx_modules()
    return [f for f in dict.fromkeys(formats) if f != "torch"]


def write_programs(folder: Path, wanted: list[str], model: torch.nn.Module, pre: Preprocess) -> list[Path]:
    """Add the programs to a bundle folder being written. A torch.export program is built in memory and written
    by Python, so a full disk is an OSError (one line from the CLI), not an abort inside torch's zip writer."""
    example, written = torch.rand(2, pre.channels, pre.size, pre.size), []
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
                    torch.onnx.export(model, (example,), tmp, input_names=["x"], output_names=list(OUTPUTS),
                                      dynamic_shapes=({0: batch},), dynamo=True, external_data=False, verbose=False)
        except (HamtuneError, OSError):
            raise
        except Exception as exc:  # a model torch cannot export: say which and why, in one line
            raise HamtuneError(f"{out}: could not export the model as {fmt} ({first_line(exc, 200)})") from None
        written.append(out)
    return written


def _refuse(path: Path, why: str) -> HamtuneError:
    return HamtuneError(f"{path}: refused, {why}; hamtune never writes such a program, so it was not loaded "
                        "(export the model again with --format torch-export)")


def _strings(value, key: str | None = None):
    """(key, string) for every string in a JSON document, with the key it sits under."""
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, k)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v, key)
    elif isinstance(value, str):
        yield key, value


def _safe_expression(text: str) -> bool:
    words = re.findall(r"[A-Za-z_]\w*", text)
    return bool(EXPRESSION.fullmatch(text)) and all(w in SYMPY_WORDS or re.fullmatch(r"[su]\d+", w) for w in words)


def check_program(path: Path) -> None:
    """Raise unless the archive at `path` is a plain torch.export program that loading cannot make run code."""
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise HamtuneError(f"{path}: not a readable torch.export program ({first_line(exc, 120)})") from None
    with archive:
        infos = archive.infolist()
        roots = {info.filename.split("/", 1)[0] for info in infos}
        if len(roots) != 1 or sum(info.file_size for info in infos) > MAX_UNCOMPRESSED:
            raise _refuse(path, "not one torch.export archive of a bounded size")
        root = roots.pop()
        names = {info.filename.split("/", 1)[1] if "/" in info.filename else "" for info in infos}
        unknown = sorted(n for n in names if not NAMES.fullmatch(n))
        if unknown:
            raise _refuse(path, f"it holds {unknown[0]!r}, which a plain program does not (pickled objects, compiled code)")

        def read(name: str) -> bytes:
            return archive.read(f"{root}/{name}")

        try:
            for config, pattern in TENSOR_FILES.items():
                entries = json.loads(read(config)).get("config", {}) if config in names else {}
                for key, meta in entries.items():
                    if meta.get("use_pickle") is not False or not pattern.fullmatch(str(meta.get("path_name"))):
                        raise _refuse(path, f"{config} stores {key!r} as a pickle, which loading would run")
            program = json.loads(read("models/model.json"))
        except (KeyError, ValueError, AttributeError, UnicodeDecodeError) as exc:
            raise HamtuneError(f"{path}: not a readable torch.export program ({first_line(exc, 120)})") from None
        for key, text in _strings(program):
            if key == "target" and not TARGET.fullmatch(text):
                raise _refuse(path, f"its graph calls {text[:80]!r}, not an ATen operator")
            if key == "expr_str" and not _safe_expression(text):
                raise _refuse(path, f"its shape expression {text[:80]!r} is not a plain symbol")
        if "data/sample_inputs/model.pt" in names:
            try:  # torch retries these with weights_only=False if this fails: they must load as tensors
                torch.load(io.BytesIO(read("data/sample_inputs/model.pt")), weights_only=True)
            except Exception:
                raise _refuse(path, "its sample inputs hold pickled objects other than tensors") from None
