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
import logging
import re
import warnings
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import torch

import hamtune
from hamtune.data.images import RESIZE_RULE
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.export import FORMATS, PROGRAMS, SCORE_GRAPH
from hamtune.export.maps import add_view, score_map, view_maps
from hamtune.files import atomic_file
from hamtune.train.config import TrainConfig, score_parts
from hamtune.train.evaluate import FLIPS, ScoreState, anomaly_score, score_batch
from hamtune.train.scores import PARTS
from hamtune.train.tensors import to_input

if TYPE_CHECKING:
    from typing_extensions import TypeIs

    from hamtune.export.bundle import Bundle, EnsembleBundle

OUTPUTS = ("recon", "mu", "logvar")
ONNX_EXTRA = 'ONNX export and scoring need the optional extra: pip install "hamtune[onnx]"'

NAMES = re.compile(
    r"(archive_format|archive_version|byteorder|\.data/version|\.data/serialization_id|models/model\.json"
    r"|data/weights/model_weights_config\.json|data/constants/model_constants_config\.json"
    r"|data/sample_inputs/model\.pt|data/weights/weight_\d+|data/constants/tensor_\d+)"
)
TENSOR_FILES = {
    "data/weights/model_weights_config.json": re.compile(r"weight_\d+"),
    "data/constants/model_constants_config.json": re.compile(r"tensor_\d+"),
}
TARGET = re.compile(r"torch\.ops\.aten\.\w+\.\w+|_operator\.(getitem|add|sub|mul|floordiv|truediv|neg|eq|ge|gt|le|lt)")
SYMPY_WORDS = {
    "Symbol",
    "Integer",
    "positive",
    "integer",
    "True",
    "False",
    "Max",
    "Min",
    "FloorDiv",
    "Mod",
    "Mul",
    "Add",
    "CeilToInt",
    "FloorToInt",
    "PythonMod",
    "IntTrueDiv",
    "CleanDiv",
}
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
        raise UsageError(f"formats must be a list of format names ({', '.join(FORMATS)}), got {formats!r}")
    check_formats(tuple(formats))
    if "onnx" in formats:
        onnx_modules()
    return [f for f in dict.fromkeys(formats) if f != "torch"]


def mappable(config: TrainConfig) -> bool:
    """Whether the score is a mean over pixels (every part has a per-pixel map: train/scores.py PARTS)."""
    return all(PARTS[p].pixel_map for p in score_parts(config.score))


class ScoreGraph(torch.nn.Module):
    """The whole anomaly score as one program: uint8 (N,H,W,C) images of the model's size -> (N,) scores, with
    the input scaling, layout, test-time flips, SSIM, latent Gaussian and standardisation of `anomaly_score`;
    with `maps`, also the (N,H,W) anomaly map of export/maps.py, from the very reconstructions the score used."""

    latent_mean: torch.Tensor  # buffers
    latent_whitening: torch.Tensor

    def __init__(self, model: torch.nn.Module, config: TrainConfig, state: ScoreState, maps: bool = False):
        super().__init__()
        self.model, self.config, self.state, self.maps = model, config, state, maps
        latent = state.latent_whitening()
        self.register_buffer("latent_mean", latent[0] if latent else torch.zeros(0))
        self.register_buffer("latent_whitening", latent[1] if latent else torch.zeros(0))

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        latent = (self.latent_mean, self.latent_whitening) if self.latent_mean.numel() else None
        seen: list[tuple[torch.Tensor, torch.Tensor]] = []

        def model(x: torch.Tensor):
            out = self.model(x)
            seen.append((x, out[0]))
            return out

        terms = score_batch(model, to_input(images, self.config.input_range), self.config, latent)
        score = anomaly_score(terms, self.config.score, self.state)
        if not self.maps:
            return score
        parts: dict[str, torch.Tensor] = {}
        for dims, (x, recon) in zip(FLIPS, seen):
            add_view(parts, view_maps(x, recon, self.config.input_range, score_parts(self.config.score)), dims, len(seen))
        return score, score_map(parts, self.config.score, self.state.center, self.state.scale)


class EnsembleScoreGraph(torch.nn.Module):
    """An ensemble's score as one program: each member's ScoreGraph, standardised by the member's validation-normal
    centre and scale, averaged (bundle.combine; the maps as export/maps.Mapper combines them)."""

    def __init__(self, graphs: list[ScoreGraph], members: list[dict], maps: bool = False):
        super().__init__()
        self.graphs, self.maps = torch.nn.ModuleList(graphs), maps
        self.standard = [(float(m["center"]), float(m["scale"])) for m in members]

    def forward(self, images: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        outs = [graph(images) for graph in self.graphs]
        scores = [(out[0] if self.maps else out) for out in outs]
        score = torch.stack([(s - c) / k for s, (c, k) in zip(scores, self.standard)]).mean(0)
        if not self.maps:
            return score
        return score, torch.stack([(out[1] - c) / k for out, (c, k) in zip(outs, self.standard)]).mean(0)


def score_program(bundle: Bundle | EnsembleBundle, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """The bundle's whole score as one module of uint8 images, with the map output where every part has a map."""
    if hasattr(bundle, "members"):
        maps = all(mappable(m.config) for m in bundle.members)
        graphs = [ScoreGraph(m.model("cpu"), m.config, m.score_state(), maps) for m in bundle.members]
        return EnsembleScoreGraph(graphs, bundle.info["members"], maps).eval()
    return ScoreGraph(model or bundle.model("cpu"), bundle.config, bundle.score_state(), mappable(bundle.config)).eval()


SCORE_RULE = "one part: that part; several: the sum of (part - center) / scale; parts: " + ", ".join(
    f"{part.name} = {part.rule}" for part in PARTS.values()
)
MAP_TEXT = (
    "output 'map': float32 (N, H, W), the per-pixel anomaly map (mse: squared error averaged over channels; ssim: "
    "1 - local SSIM; gms: 1 - local gradient-magnitude similarity; a border without a window filled with the map's "
    "mean; parts standardised and summed as the score; flips flipped back and averaged): its mean over the pixels is "
    "the score"
)


def _state_json(state: ScoreState) -> str:
    return json.dumps({key: value.tolist() if isinstance(value, torch.Tensor) else value for key, value in state.to_dict().items()})


def _flips(config: TrainConfig) -> str:
    return "averaged over the image and its 3 flips (H, W, both)" if config.tta else "no test-time flips"


def is_ensemble(bundle: Bundle | EnsembleBundle) -> TypeIs[EnsembleBundle]:
    """Whether a loaded export is an ensemble: the one that has members."""
    return hasattr(bundle, "members")


def contract(bundle: Bundle | EnsembleBundle, program: str) -> dict[str, str]:
    """The ONNX metadata_props of a program: how to preprocess its input and turn its output into the score,
    readable without hamtune or torch (onnxruntime's custom_metadata_map). An ensemble's score.onnx is the whole
    ensemble: its members, their standardisation and the mean."""
    members = getattr(bundle, "members", None)
    pre, config = bundle.preprocess, (bundle.members[0] if is_ensemble(bundle) else bundle).config
    unit = "[-1, 1]" if config.input_range == "pm1" else "[0, 1]"
    maps = all(mappable(m.config) for m in members) if members else mappable(config)
    outputs = (["score", "map"] if maps else ["score"]) if program == SCORE_GRAPH else list(OUTPUTS)
    if program == SCORE_GRAPH:
        io_text = (
            f"input 'images': uint8 (N, {pre.size}, {pre.size}, {pre.channels}) NHWC, 0-255, preprocessed as "
            "'resize' says; output 'score': float32 (N,), higher = more anomalous; flagged = score > threshold"
            + (f"; {MAP_TEXT}" if maps else "; no map output (a part of the score is one number per image)")
        )
    else:
        io_text = (
            f"input 'x': float32 (N, {pre.channels}, {pre.size}, {pre.size}) NCHW = uint8 pixels / 255"
            f"{' * 2 - 1' if config.input_range == 'pm1' else ''} (range {unit}); outputs 'recon' (as x), "
            "'mu' and 'logvar' (N, latent; logvar has 0 columns for an AE); the score is computed from them as "
            "'score' and 'score_state' say (score.onnx does it in-graph)"
        )
    values = {
        "hamtune_version": hamtune.__version__,
        "program": program,
        "io": io_text,
        "outputs": json.dumps(outputs),
        "map_output": "map" if "map" in outputs else "",
        "size": pre.size,
        "crop": pre.crop,
        "channels": pre.channels,
        "channel_order": "RGB" if pre.channels == 3 else "L",
        "layout": "NHWC" if program == SCORE_GRAPH else "NCHW",
        "range": "uint8 0-255" if program == SCORE_GRAPH else unit,
        "resize": RESIZE_RULE,
        "threshold": repr(float(bundle.threshold)),
        "protocol": bundle.protocol,
        "anomalous": json.dumps(bundle.info["protocol"]["anomalous"]),
        "trial_id": str(bundle.info.get("trial_id")),
        "golden": "golden.npz beside this file: uint8 input images, their expected scores and decisions (hamtune verify)",
    }
    if members:
        values.update(
            {
                "score": str(bundle.info.get("score")),
                "score_rule": (
                    "the mean over the members of (member score - center) / scale, each member's score by the "
                    f"member rule ({SCORE_RULE}), its center and scale its validation-normal mean and spread"
                ),
                "members": json.dumps(
                    [
                        {
                            "trial_id": str(m.info.get("trial_id")),
                            "score": m.config.score,
                            "score_parts": score_parts(m.config.score),
                            "tta": m.config.tta,
                            "center": entry["center"],
                            "scale": entry["scale"],
                            "score_state": json.loads(_state_json(m.score_state())),
                        }
                        for m, entry in zip(members, bundle.info["members"])
                    ]
                ),
            }
        )
    else:
        assert not is_ensemble(bundle)  # an ensemble has members
        values.update(
            {
                "score": config.score,
                "score_parts": json.dumps(score_parts(config.score)),
                "score_rule": f"{SCORE_RULE}; {_flips(config)}",
                "score_state": _state_json(bundle.score_state()),
            }
        )
    return {key: str(value) for key, value in values.items()}


def _export_onnx(
    module: torch.nn.Module, example: torch.Tensor, out: Path, names: tuple[list[str], list[str]], props: dict[str, str]
) -> None:
    import onnx

    batch = torch.export.Dim("batch", min=1, max=1 << 16)
    logger, level = logging.getLogger("torch.onnx"), logging.getLogger("torch.onnx").level
    try:  # the exporter's deprecation and "torchvision is not installed" notices; errors still raise
        logger.setLevel(logging.ERROR)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                (example,),
                out,
                input_names=names[0],
                output_names=names[1],
                dynamic_shapes=({0: batch},),
                dynamo=True,
                external_data=False,
                verbose=False,
            )
    finally:
        logger.setLevel(level)
    proto = onnx.load(str(out))
    onnx.helper.set_model_props(proto, props)
    onnx.save(proto, str(out))


def write_programs(
    folder: Path, wanted: Sequence[str], bundle: Bundle | EnsembleBundle, model: torch.nn.Module | None = None
) -> list[Path]:
    """Add the programs of `model` (default: the bundle's) to a bundle folder being written (`bundle`: that folder,
    loaded). A torch.export program is built in memory and written by Python, so a full disk is an OSError (one
    line from the CLI), not an abort inside torch's zip writer. ONNX comes as two files: the model (model.onnx)
    and the score (score.onnx). An ensemble has no one model: its programs are its whole score as one graph
    (members, standardisation, mean; uint8 images in), as score.onnx and model.pt2."""
    pre, written = bundle.preprocess, []
    ensemble = hasattr(bundle, "members")
    if not is_ensemble(bundle):
        model = model or bundle.model("cpu")
    example = torch.rand(2, pre.channels, pre.size, pre.size)
    images = torch.randint(0, 256, (2, pre.size, pre.size, pre.channels), dtype=torch.uint8)
    for fmt in wanted:
        out = Path(folder) / PROGRAMS[fmt]
        try:
            if fmt == "torch-export":
                with atomic_file(out) as tmp:
                    buffer = io.BytesIO()
                    batch = torch.export.Dim("batch", min=1, max=1 << 16)
                    module, sample = (score_program(bundle), images) if ensemble or model is None else (model, example)
                    torch.export.save(torch.export.export(module, (sample,), dynamic_shapes=({0: batch},)), buffer)
                    tmp.write_bytes(buffer.getvalue())
            else:
                if not ensemble:
                    assert model is not None  # set above for a single model
                    with atomic_file(out) as tmp:
                        _export_onnx(model, example, tmp, (["x"], list(OUTPUTS)), contract(bundle, PROGRAMS[fmt]))
                    written.append(out)
                out = Path(folder) / SCORE_GRAPH
                with atomic_file(out) as tmp:
                    props = contract(bundle, SCORE_GRAPH)
                    _export_onnx(score_program(bundle, model), images, tmp, (["images"], json.loads(props["outputs"])), props)
        except (HamtuneError, OSError):
            raise
        except Exception as exc:  # a model torch cannot export: say which and why, in one line
            raise HamtuneError(f"{out}: could not export the model as {fmt} ({first_line(exc, 200)})") from None
        written.append(out)
    return written


def _refuse(path: Path, why: str) -> HamtuneError:
    return HamtuneError(
        f"{path}: refused, {why}; hamtune never writes such a program, so it was not loaded "
        "(export the model again with --format torch-export)"
    )


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


# ---- ONNX programs: checked before onnxruntime loads them -------------------------------------------------

ONNX_OPS = frozenset(
    {  # what torch.onnx (dynamo) emits for hamtune's models and score graphs (ensembles, map output); no control flow
        "Abs",
        "Add",
        "AveragePool",  # msssim's scales
        "BatchNormalization",
        "Cast",
        "Clip",
        "Concat",
        "Constant",
        "Conv",
        "ConvTranspose",
        "Div",
        "Equal",
        "Erf",
        "Exp",
        "Expand",
        "Flatten",
        "Gather",
        "Gemm",
        "GroupNormalization",
        "Identity",
        "InstanceNormalization",
        "LeakyRelu",
        "Log",
        "MatMul",
        "Max",
        "Min",
        "Mul",
        "Neg",
        "Pow",
        "Range",
        "Reciprocal",
        "ReduceMax",
        "ReduceMean",
        "ReduceMin",
        "ReduceProd",  # msssim's product over scales
        "ReduceSum",
        "Relu",
        "Reshape",
        "Resize",
        "ScatterND",
        "Shape",
        "Sigmoid",
        "Slice",
        "Softplus",
        "Split",
        "Sqrt",
        "Squeeze",
        "Sub",
        "Tanh",
        "Transpose",
        "Unsqueeze",
        "Where",
    }
)
ONNX_FLOAT, ONNX_UINT8 = 1, 2  # onnx.TensorProto's element types


def onnx_contract(program: str, pre) -> tuple[list[tuple[str, int, list]], list[str]]:
    """(name, element type, shape) of each input and the output names a hamtune ONNX program has: model.onnx takes
    float NCHW `x`, score.onnx uint8 NHWC `images`; the batch dimension is free."""
    if program == SCORE_GRAPH:
        return [("images", ONNX_UINT8, [None, pre.size, pre.size, pre.channels])], ["score"]
    return [("x", ONNX_FLOAT, [None, pre.channels, pre.size, pre.size])], list(OUTPUTS)


def _refuse_onnx(path: Path, why: str) -> HamtuneError:
    return HamtuneError(
        f"{path}: refused, {why}; hamtune never writes such a program, so it was not run (export the model again with --format onnx)"
    )


def check_onnx(path: Path, pre) -> None:
    """Raise unless the ONNX file at `path` is a program as hamtune exports it: standard operators of the allow-list
    only (no Loop, Scan or If, so nothing runs without a bound; no custom domain or function), and the inputs,
    element types, shapes and outputs its contract (`pre`: the bundle's preprocess) says."""
    import onnx

    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise HamtuneError(f"{path}: not a readable ONNX model ({first_line(exc, 200)})") from None
    graph = proto.graph
    if proto.functions or any(o.domain not in ("", "ai.onnx") for o in proto.opset_import):
        raise _refuse_onnx(path, "it defines functions or uses operators outside the standard ONNX domain")
    for node in graph.node:
        if node.domain not in ("", "ai.onnx") or node.op_type not in ONNX_OPS:
            raise _refuse_onnx(
                path,
                f"its graph holds a {node.op_type} operator ({node.domain or 'ai.onnx'}), which is not "
                "among those hamtune's exporter writes (no loops, no custom operators)",
            )
        if any(a.type in (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS) for a in node.attribute):
            raise _refuse_onnx(path, f"its {node.op_type} operator holds a subgraph")
    if any(init.data_location == onnx.TensorProto.EXTERNAL for init in graph.initializer):
        raise _refuse_onnx(path, "its weights point to external files")
    inputs, outputs = onnx_contract(path.name, pre)
    initialised = {init.name for init in graph.initializer}
    found = []
    for value in graph.input:
        if value.name in initialised:
            continue
        shape = [d.dim_value if d.HasField("dim_value") else None for d in value.type.tensor_type.shape.dim]
        found.append((value.name, value.type.tensor_type.elem_type, [None, *shape[1:]] if shape else shape))
    names = [o.name for o in graph.output]
    if found != inputs or not set(outputs) <= set(names):
        raise _refuse_onnx(
            path,
            f"it takes {found} and gives {names}, but this bundle's program takes {inputs} and gives "
            f"{outputs} (element type 1 = float32, 2 = uint8)",
        )
