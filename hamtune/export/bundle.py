"""An exported model: one folder that holds everything needed to score new images as training did.

DIR/
  model.pt       the weights of the trial's best validation epoch (a state dict; torch.load(weights_only=True))
  score.pt       what the score fitted besides the weights (latent Gaussian, standardisation; tensors only)
  config.json    the TrainConfig the trial ran
  bundle.json    preprocessing, input range, score, threshold, protocol, metrics, data fingerprint, provenance
  MODEL_CARD.md  what it is, on what data, how well, and what it must not be used for
  model.onnx, model.pt2  (with `export --format onnx|torch-export`) the model as portable programs
  score.onnx     (with --format onnx) uint8 images -> anomaly score (and map), everything in-graph (a contract in its metadata)
  golden.npz     golden vectors: a few input images as exact uint8 tensors, their scores and decisions (`hamtune verify`)
An ensemble holds members/1..K (ordinary bundles); its programs are its whole score as one graph (score.onnx, model.pt2).

bundle.json records the sha256 of every other file ("files", version 3); load_bundle checks them, and
every field it uses, before it reads a weight (export/integrity.py says what that does and does not prove).
"""

from __future__ import annotations

import json
import logging
import math
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

import hamtune
from hamtune.data import MIN_IMAGE_SIZE
from hamtune.data.images import RESIZE_RULE, Preprocess
from hamtune.data.splits import get_protocol
from hamtune.data.synth import MARKER
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.export import PROGRAMS, SCORE_GRAPH, integrity
from hamtune.export.golden import GOLDEN, TOLERANCE, pick, synthetic, validation_split, write_golden
from hamtune.export.programs import programs_wanted, write_programs
from hamtune.export.threshold_check import check_threshold
from hamtune.files import atomic_folder, read_text
from hamtune.gate import output
from hamtune.models import Autoencoder, build_model
from hamtune.results.numbers import fmt
from hamtune.results.rank import ENSEMBLE, top_trials
from hamtune.train import checkpoint as ckpt
from hamtune.train.config import TrainConfig, score_parts
from hamtune.train.evaluate import ScoreState, anomaly_score, score_images
from hamtune.train.scores import PARTS

log = logging.getLogger(__name__)

BUNDLE_VERSION = 4  # 4 adds golden.npz and ensemble programs; 3 added "files" (sha256 digests); 2 score.pt and ensembles
READABLE_VERSIONS = (1, 2, 3, 4)  # 1 and 2 (no digests) still score as --format torch; their programs are refused
WEIGHTS, SCORE_STATE, CONFIG, META, CARD = "model.pt", "score.pt", "config.json", "bundle.json", "MODEL_CARD.md"
MEMBERS = "members"  # an ensemble's folder of member bundles
Scorer = Callable[[np.ndarray], np.ndarray]  # uint8 (N,H,W,C) images -> anomaly scores
CARD_METRICS = ("auroc", "auprc", "f1", "precision", "recall", "mse", "psnr", "ssim", "elbo")
FILE_NAMES = {WEIGHTS, SCORE_STATE, CONFIG, META, CARD, SCORE_GRAPH, GOLDEN, *PROGRAMS.values()}
NAMES = FILE_NAMES | {MEMBERS} | {str(i) for i in range(1, 100)}  # what a bundle (an ensemble: members/1..99) holds


@dataclass
class Bundle:
    """A loaded export: the config, how to preprocess, the decision threshold, and everything recorded."""

    path: Path
    config: TrainConfig
    preprocess: Preprocess
    threshold: float
    info: dict

    def model(self, device: str | torch.device = "cpu") -> Autoencoder:
        """The trained model in eval mode; weights are loaded as tensors only."""
        pre = self.preprocess
        model = build_model(self.config.model_spec(), (pre.channels, pre.size, pre.size))
        try:
            model.load_state_dict(ckpt.load_weights(self.path / WEIGHTS, device))
        except RuntimeError as exc:
            raise HamtuneError(f"{self.path / WEIGHTS}: does not fit the exported config ({state_dict_problem(exc)})") from None
        return model.to(device).eval()

    def score_state(self) -> ScoreState:
        path = self.path / SCORE_STATE
        values = ckpt.load_weights(path) if path.exists() else {}
        return check_score_state(values, self.config, path)

    @property
    def protocol(self) -> str:
        return self.config.protocol

    def scorer(self, device: torch.device, model=None) -> Scorer:
        """The trial's anomaly score of uint8 images, computed by the very functions its evaluation used
        (`model`: a stand-in for the PyTorch module, such as an exported program)."""
        model, state, config = model or self.model(device), self.score_state(), self.config

        def score(images: np.ndarray) -> np.ndarray:
            tensor = torch.from_numpy(np.array(images, dtype=np.uint8)).to(device)
            return anomaly_score(score_images(model, tensor, np.arange(len(images)), config, state), config.score, state)

        return score


def combine(scores: list[np.ndarray], members: list[dict]) -> np.ndarray:
    """An ensemble's score: the mean of its members' scores, each standardised by its validation-normal mean and spread."""
    return np.mean([(s - m["center"]) / m["scale"] for s, m in zip(scores, members)], axis=0)


@dataclass
class EnsembleBundle:
    """A loaded ensemble export: member bundles and how their scores are standardised and combined."""

    path: Path
    members: list[Bundle]
    preprocess: Preprocess
    threshold: float
    info: dict

    @property
    def protocol(self) -> str:
        return self.info["protocol"]["name"]

    def scorer(self, device: torch.device) -> Scorer:
        scorers = [member.scorer(device) for member in self.members]
        return lambda images: combine([score(images) for score in scorers], self.info["members"])


def state_dict_problem(exc: Exception) -> str:
    """torch's load_state_dict complaint cut to what differs (its first line says only "Error(s) in loading")."""
    lines = [line.strip() for line in str(exc).splitlines()[1:] if line.strip()]
    return first_line(" ".join(lines) or str(exc), 240)


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def check_score_state(values, config: TrainConfig, where: Path) -> ScoreState:
    """score.pt as the config's score needs it: a latent part needs the Gaussian of the code's size, a score of
    several parts a finite centre and positive scale for each; anything else is an error naming the file."""
    parts = score_parts(config.score)
    if not isinstance(values, dict):
        raise HamtuneError(f"{where}: not the score's fitted statistics (a mapping); export the model again")
    if "latent" in parts:
        mean, precision, size = values.get("latent_mean"), values.get("latent_precision"), config.latent_dim
        if not (
            isinstance(mean, torch.Tensor)
            and isinstance(precision, torch.Tensor)
            and tuple(mean.shape) == (size,)
            and tuple(precision.shape) == (size, size)
        ):
            raise HamtuneError(
                f"{where}: score {config.score} needs latent_mean ({size},) and latent_precision "
                f"({size}, {size}); they are missing or mis-shaped, so export the model again"
            )
    if len(parts) > 1:
        center, scale = values.get("center"), values.get("scale")
        if not (
            isinstance(center, dict)
            and isinstance(scale, dict)
            and all(_finite(center.get(p)) and _finite(scale.get(p)) and scale[p] > 0 for p in parts)
        ):
            raise HamtuneError(
                f"{where}: score {config.score} needs a finite center and a positive scale for each part; export the model again"
            )
    return ScoreState.from_dict(values)


def _plain(value):
    """A Parquet cell as JSON: numpy scalars unwrapped, NaN and missing as null."""
    if value is None or value is pd.NA:
        return None
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def is_synthetic(manifest: dict) -> bool:
    """Whether the data was generated by hamtune's synthesiser (its marker sits beside the source)."""
    source = Path(str(manifest.get("source") or ""))
    return any((folder / MARKER).exists() for folder in (source, source.parent)) or "synth" in str(manifest.get("name", ""))


def _data_manifest(row: pd.Series) -> dict:
    path = row.get("data_path")
    if isinstance(path, str) and (Path(path) / "manifest.json").exists():
        try:
            return json.loads(read_text(Path(path) / "manifest.json"))
        except (OSError, ValueError, HamtuneError):
            pass
    return {"name": row.get("data_name")}


def bundle_info(row: pd.Series, config: TrainConfig, metric: str, rank: int) -> dict:
    """What bundle.json records about one trial."""
    manifest = _data_manifest(row)
    protocol = get_protocol(config.protocol)
    metrics = {
        k: _plain(v)
        for k, v in row.items()
        if str(k).startswith(("val_", "test_")) and k not in TrainConfig.__dataclass_fields__ and isinstance(_plain(v), (int, float))
    }
    return {
        "bundle_version": BUNDLE_VERSION,
        "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "hamtune_version": hamtune.__version__,
        "sweep": _plain(row.get("sweep")),
        "trial_id": _plain(row["trial_id"]),
        "rank": rank,
        "ranked_by": metric,
        "model": {"kind": config.kind, "arch": config.arch, "latent_dim": config.latent_dim, "n_params": _plain(row.get("n_params"))},
        "preprocess": {**asdict(Preprocess(config.image_size, config.crop, config.channels)), "input_range": config.input_range},
        "score": config.score,
        "recon_loss": config.recon_loss,
        "threshold": _plain(row.get("threshold")),
        "protocol": {"name": protocol.name, "normal": list(protocol.normal), "anomalous": list(protocol.anomalous)},
        "metrics": metrics,
        "epochs_run": _plain(row.get("epochs_run")),
        "seed": config.seed,
        "data": {
            "name": _plain(row.get("data_name")),
            "fingerprint": _plain(row.get("data_fingerprint")),
            "form": manifest.get("form"),
            "count": manifest.get("count"),
            "counts": manifest.get("counts"),
            "synthetic": is_synthetic(manifest),
        },
        "test_set": _plain(row.get("test_set")),
        "test_fingerprint": _plain(row.get("test_fingerprint")),
        "device": _plain(row.get("device")),
        "git_commit": _plain(row.get("git_commit")),
    }


def is_bundle(folder: Path) -> bool:
    """Whether a folder is one `hamtune export` wrote: its bundle.json names a bundle version and it holds
    nothing but a bundle's files (a folder that merely contains a bundle.json is not one)."""
    try:
        names = {p.name for p in folder.iterdir()}
        info = json.loads(read_text(folder / META, links=False))
    except (OSError, ValueError, UnicodeDecodeError, HamtuneError):
        return False
    return isinstance(info, dict) and "bundle_version" in info and names <= FILE_NAMES | {MEMBERS}


def check_out(out: Path, sources: list[Path], force: bool) -> None:
    """The output gate for a bundle: never the folder exported from or one above it, never inside a bundle or results
    folder, and (even with --force) nothing but an earlier bundle is replaced."""
    output(out, flag="--out", kind="folder", own=is_bundle, existing="force", reads=sources, force=force)


def seal(folder: Path, info: dict) -> None:
    """Write bundle.json with the sha256 of every other file of the bundle (call once they are all written)."""
    info = {**info, "bundle_version": BUNDLE_VERSION, integrity.DIGESTS: integrity.digests(folder, NAMES, META)}
    (Path(folder) / META).write_text(json.dumps(info, indent=1, default=float))


def write_bundle(
    row: pd.Series,
    out: Path,
    metric: str,
    rank: int,
    force: bool = False,
    results_dir: Path | None = None,
    formats: tuple[str, ...] = ("torch",),
) -> Path:
    """Export one trial's final checkpoint (and the programs `formats` asks for) to `out`: everything is written
    and sealed under a temporary name, then renamed in, so `out` is never a bundle without its files."""
    source = row.get("checkpoint")
    ensemble = isinstance(source, str) and (Path(source) / META).exists()
    if not isinstance(source, str) or not (ensemble or ckpt.delivered_weights(Path(source)).exists()):
        raise HamtuneError(f"trial {row['trial_id']}: its checkpoint {source} is missing; nothing to export")
    programs = programs_wanted(formats)
    out = Path(out)
    if results_dir is not None:  # a user's --out; an ensemble's members are written inside its own temporary folder
        check_out(out, [Path(source), Path(results_dir)], force)
    if ensemble:
        received = load_bundle(Path(source))  # its files checked (digests, no links) before any is copied
        with atomic_folder(out) as tmp:
            for relative in integrity.listing(Path(source), NAMES, META):
                (tmp / relative).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(Path(source) / relative, tmp / relative, follow_symlinks=False)
            info = {**received.info, "rank": rank, "ranked_by": metric}
            seal(tmp, info)
            finish(tmp, info, row, programs)
        return out
    config = TrainConfig.from_dict(_json_object(Path(source) / ckpt.CONFIG), where=f"{source}/{ckpt.CONFIG}")
    info = bundle_info(row, config, metric, rank)
    weights = ckpt.load_weights(ckpt.delivered_weights(Path(source)))
    state = ckpt.load_score_state(Path(source))
    with atomic_folder(out) as tmp:
        ckpt.save_tensors(weights, tmp / WEIGHTS)
        ckpt.save_tensors(state, tmp / SCORE_STATE)
        (tmp / CONFIG).write_text(json.dumps(config.to_dict(), indent=1))
        seal(tmp, info)
        finish(tmp, info, row, programs)
    return out


def finish(
    folder: Path,
    info: dict,
    row: pd.Series | None,
    programs: Sequence[str] = (),
    validation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Complete a sealed bundle folder being written: its golden vectors (kept where it has them), the check of its
    threshold on validation, its programs, its model card listing every file, sealed again; returns its info.
    `validation`: (images, labels, ids, scores) where the caller has scored them, else they come from `row`'s data."""
    bundle = load_bundle(folder)
    config = bundle.members[0].config if isinstance(bundle, EnsembleBundle) else bundle.config
    if not (Path(folder) / GOLDEN).exists() or "threshold_check" not in info:
        info = {**info, **golden_and_check(folder, bundle, config, row, validation)}
    if programs:
        write_programs(folder, programs, bundle)
    files = sorted({*integrity.listing(Path(folder), NAMES, META), META, CARD})
    if isinstance(bundle, EnsembleBundle):
        card = ensemble_card(info, bundle.members, files)
    else:
        card = model_card(info, config, files)
    (Path(folder) / CARD).write_text(card)
    seal(folder, info)
    return info


def golden_and_check(
    folder: Path,
    bundle: Bundle | EnsembleBundle,
    config: TrainConfig,
    row: pd.Series | None,
    validation: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> dict:
    """Write golden.npz (from the validation split, or synthetic where its data is not at hand) and check the threshold
    on validation; what bundle.json records of both. A threshold that flags (almost) every image is logged."""
    scorer = bundle.scorer(torch.device("cpu"))
    if validation is None and row is not None:
        split = validation_split(row, config)
        validation = (*split, scorer(split[0])) if split is not None else None
    if validation is None:
        log.info(
            "%s: the validation data is not at hand, so the golden vectors are synthetic images and the threshold is not checked", folder
        )
        images = synthetic(bundle.preprocess)
        golden = write_golden(
            folder,
            scorer,
            images,
            [f"synthetic-{i + 1}" for i in range(len(images))],
            bundle.threshold,
            "synthetic (the validation data was not at hand)",
        )
        return {"golden": golden, "threshold_check": None}
    images, labels, ids, scores = validation
    chosen = pick(scores)
    golden = write_golden(
        folder,
        scorer,
        images[chosen],
        [str(ids[i]) for i in chosen],
        bundle.threshold,
        f"validation split of {info_data_name(bundle)}, spread over its scores",
    )
    check = check_threshold(labels, scores, bundle.threshold)
    if check["warning"]:
        log.warning("%s: %s", bundle.info.get("trial_id"), check["warning"])
    return {"golden": golden, "threshold_check": check}


def info_data_name(bundle: Bundle | EnsembleBundle) -> str:
    return str((bundle.info.get("data") or {}).get("name") or "the data")


def export_trial(
    directory: Path,
    rank: int | None,
    out: Path,
    metric: str | None = None,
    force: bool = False,
    formats: tuple[str, ...] = ("torch",),
    trial: str | None = None,
) -> tuple[Path, pd.Series]:
    """Export the trial at `rank` (1 = best) of a results folder, ranked as `hamtune reproduce` ranks, or the
    ranked trial whose id is `trial` (e.g. the seed ensemble `hamtune train --seeds` delivers). With neither (and no
    `metric`), the chosen model that chosen.json records (results.chosen), as every report names it."""
    if trial is None and rank is None and metric is None:
        from hamtune.results.chosen import chosen_of

        recorded = chosen_of(Path(directory))
        trial = recorded.trial_id if recorded is not None else None
    rank = 1 if rank is None else rank
    if trial is not None:
        board, chosen = top_trials(directory, 10**9, metric)
        found = board.index[board["trial_id"].astype(str) == str(trial)]
        if not len(found):
            raise UsageError(f"{directory}: no ranked trial {trial!r}; ranked: {', '.join(board['trial_id'].astype(str)[:8])}")
        position = int(found[0])
        return write_bundle(
            board.loc[position], out, chosen.column, position + 1, force, results_dir=directory, formats=formats
        ), board.loc[position]
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise UsageError(f"--rank must be a whole number, got {rank!r}")
    if rank < 1:
        raise UsageError(f"--rank must be at least 1, got {rank}")
    board, chosen = top_trials(directory, rank, metric)
    if len(board) < rank:
        raise UsageError(f"{directory}: only {len(board)} ranked trial(s) by {chosen.column}; --rank {rank} does not exist")
    row = board.iloc[rank - 1]
    return write_bundle(row, out, chosen.column, rank, force, results_dir=directory, formats=formats), row


def _json_object(path: Path, links: bool = True) -> dict:
    """A JSON object from a bounded regular file; anything else is an error naming the file."""
    try:
        value = json.loads(read_text(path, links=links))
    except FileNotFoundError:
        raise HamtuneError(f"{path}: not found") from None
    except (ValueError, UnicodeDecodeError) as exc:
        raise HamtuneError(f"{path}: unreadable JSON ({first_line(exc, 120)})") from None
    if not isinstance(value, dict):
        raise HamtuneError(f"{path}: must hold a JSON object, got {type(value).__name__}; export the model again")
    return value


def bundle_version(info: dict, where: Path) -> int:
    found = info.get("bundle_version")
    if isinstance(found, bool) or not isinstance(found, int) or found not in READABLE_VERSIONS:
        raise HamtuneError(
            f"{where}: bundle_version {found!r} is not one this hamtune reads (the whole numbers "
            f"{', '.join(map(str, READABLE_VERSIONS))}); export the model again"
        )
    return found


def load_bundle(path: Path) -> Bundle | EnsembleBundle:
    """Open an exported folder (a model or an ensemble of them). Its files are checked before anything is
    read as a model (digests, no links or devices, bounded sizes) and every field it uses against the schema;
    anything missing, edited or from another bundle version is an error naming the file."""
    path = Path(path)
    if not path.is_dir():
        raise HamtuneError(f"{path}: no such bundle folder (hamtune export RESULTS --out DIR writes one)")
    info = _json_object(path / META, links=False)
    if bundle_version(info, path / META) >= 3:
        integrity.verify(path, info.get(integrity.DIGESTS), NAMES, META)
    else:  # no digests recorded: still no links, devices, oversized or unknown files
        integrity.listing(path, NAMES, META)
    pre: Any = info.get("preprocess")  # JSON as read: the try below checks it
    try:
        preprocess = Preprocess(int(pre["size"]), str(pre["crop"]), int(pre["channels"]))
        if preprocess.size < MIN_IMAGE_SIZE or preprocess.channels not in (1, 3):
            raise ValueError(f"size {preprocess.size}, channels {preprocess.channels}")
    except (TypeError, KeyError, ValueError) as exc:
        raise HamtuneError(
            f"{path / META}: preprocess must hold size ({MIN_IMAGE_SIZE} or more), crop and channels (1 or 3) ({first_line(exc, 80)})"
        ) from None
    threshold = _threshold(info.get("threshold"), path / META)
    if not isinstance(info.get("data", {}), dict) or not isinstance(info.get("protocol", {}), dict):
        raise HamtuneError(f"{path / META}: data and protocol must be JSON objects; export the model again")
    if info.get("kind") == ENSEMBLE:
        return EnsembleBundle(path, _members(path, info, preprocess), preprocess, threshold, info)
    config = TrainConfig.from_dict(_json_object(path / CONFIG, links=False), where=str(path / CONFIG))
    exported = (config.image_size, config.crop, config.channels)
    if exported != (preprocess.size, preprocess.crop, preprocess.channels):
        raise HamtuneError(
            f"{path / CONFIG}: image_size/crop/channels {exported} disagree with {META}'s preprocess "
            f"{(preprocess.size, preprocess.crop, preprocess.channels)}; the bundle was edited, export it again"
        )
    for key, recorded in (("input_range", pre.get("input_range")), ("score", info.get("score"))):
        if recorded is not None and getattr(config, key) != recorded:
            raise HamtuneError(
                f"{path / CONFIG}: {key} {getattr(config, key)!r} disagrees with {META}'s {recorded!r}; "
                "the bundle was edited, export it again"
            )
    bundle = Bundle(path, config, preprocess, threshold, info)
    bundle.score_state()  # checked now, before any image is scored
    return bundle


def _members(path: Path, info: dict, preprocess: Preprocess) -> list[Bundle]:
    """An ensemble's member bundles: each entry names a folder members/N inside this bundle and a finite
    centre and positive scale; members are single models prepared as the ensemble is."""
    where, entries = path / META, info.get("members")
    if not isinstance(entries, list) or not entries:
        raise HamtuneError(f"{where}: members must be a list of member entries; export the ensemble again")
    members = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict) or not re.fullmatch(rf"{MEMBERS}/[1-9][0-9]?", str(entry.get("path"))):
            raise HamtuneError(
                f"{where}: member {i + 1}: path must be {MEMBERS}/N inside the bundle, got "
                f"{entry.get('path') if isinstance(entry, dict) else entry!r}"
            )
        if not _finite(entry.get("center")) or not _finite(entry.get("scale")) or entry["scale"] <= 0:
            raise HamtuneError(
                f"{where}: member {i + 1}: center must be a finite number and scale a positive one, "
                f"got {entry.get('center')!r} and {entry.get('scale')!r}"
            )
        member = load_bundle(path / entry["path"])
        if not isinstance(member, Bundle) or member.preprocess != preprocess:
            raise HamtuneError(f"{where}: an ensemble's members must be single models prepared as {preprocess}")
        members.append(member)
    return members


def _threshold(value, where: Path) -> float:
    """The decision threshold: a finite number, or null (nothing is flagged)."""
    if value is None:
        return math.inf
    if not _finite(value):
        raise HamtuneError(f"{where}: threshold must be a finite number or null, got {value!r}")
    return float(value)


def describe_score(config: TrainConfig) -> str:
    """The anomaly score in words, as a model card states it."""
    parts = [PARTS[p].words for p in score_parts(config.score)]
    text = parts[0] if len(parts) == 1 else "the sum of " + " and ".join(parts) + ", each standardised on the validation normals"
    return text + (", averaged over the image and its three flips" if config.tta else "")


FILE_WORDS = {
    WEIGHTS: "the weights of the best validation epoch (a state dict; `torch.load(path, weights_only=True)`)",
    SCORE_STATE: "what the score fitted besides the weights (latent Gaussian, standardisation; tensors only)",
    CONFIG: "the training configuration (TrainConfig)",
    META: "everything this card says, machine-readable, with the sha256 of every other file",
    CARD: "this card",
    PROGRAMS["onnx"]: "the model as ONNX: float NCHW images -> reconstruction, code, log-variance",
    SCORE_GRAPH: "the whole score as ONNX: uint8 NHWC images -> score (and the anomaly map where the score has one); "
    "its contract in metadata_props",
    PROGRAMS["torch-export"]: "the model as a torch.export program: float NCHW images -> reconstruction, code, log-variance",
    GOLDEN: "golden vectors: input images as exact uint8 NHWC tensors, their expected scores and threshold decisions",
}
ENSEMBLE_WORDS = {
    PROGRAMS["torch-export"]: "the whole ensemble score as one torch.export program: uint8 NHWC images -> score (and map)",
    SCORE_GRAPH: "the whole ensemble score as one ONNX graph (every member, its standardisation, the mean): uint8 NHWC "
    "images -> score (and the anomaly map where every member's score has one)",
}


def files_section(files: list[str], ensemble: bool = False) -> str:
    """Every file of the bundle, one line each, with what it holds (a member's files as an ordinary bundle's)."""
    words = {**FILE_WORDS, **ENSEMBLE_WORDS} if ensemble else FILE_WORDS
    lines = [f"- `{f}`: {(words if '/' not in f else FILE_WORDS).get(Path(f).name, 'part of the bundle')}" for f in files]
    return "\n".join(lines)


def threshold_warning(info: dict) -> str:
    """The card's warning where the validation threshold flags (almost) every image (export/threshold_check.py)."""
    check = info.get("threshold_check") or {}
    return f"\n\n**Warning:** {check['warning']}." if check.get("warning") else ""


def preprocessing_text(pre: dict) -> str:
    return (
        f"Decode (a 16-bit greyscale image is first scaled to 8 bits: value * 255 / 65535, rounded), `{pre['crop']}` "
        f"crop to a square, resize to {pre['size']}x{pre['size']} px, {pre['channels']} channel(s), "
        f"pixels scaled to {'[-1, 1]' if pre.get('input_range') == 'pm1' else '[0, 1]'}. Exactly (a port must do "
        f"this; a plain bilinear, bicubic or nearest resize of the full image moves the score): {RESIZE_RULE}."
    )


def golden_text(info: dict) -> str:
    golden = info.get("golden") or {}
    if not golden:
        return "This bundle has no golden vectors (exported before they were added); export it again for them."
    return (
        f"`{GOLDEN}` holds {golden.get('count')} input image(s) ({golden.get('source')}) as the exact uint8 NHWC tensors "
        f"the model takes (shape {golden.get('shape')}), the scores this bundle gives them and their decisions at the "
        f"threshold. They are the reference for ports: a port that reproduces these scores within {TOLERANCE:g} "
        "(relative; absolute below 1) scores as hamtune does, and one that decodes the images' files the same way "
        "preprocesses as it does. Check one with `hamtune verify THIS_FOLDER --program torch|onnx|torch-export`."
    )


def model_card(info: dict, config: TrainConfig, files: list[str] | None = None) -> str:
    """A short, honest description: what the model does, how it was measured, and where it must not be used."""
    data, protocol, metrics, pre = info["data"], info["protocol"], info["metrics"], info["preprocess"]
    score = describe_score(config)
    rows = []
    for name in CARD_METRICS:
        val, test = metrics.get(f"val_{name}"), metrics.get(f"test_{name}")
        if val is not None or test is not None:
            rows.append(f"| {name} | {fmt(val, 'n/a')} | {fmt(test, 'n/a')} |")
    if data.get("synthetic"):
        provenance = (
            "**Trained on synthetic data.** The images were generated by hamtune's HAM-like synthesiser, not "
            "photographed: the metrics say nothing about real skin lesions. Use this model to try the tooling only."
        )
    else:
        provenance = (
            "HAM10000 (and ISIC archive data derived from it) is licensed CC BY-NC 4.0: this model is derived from it "
            "and is for non-commercial research use; cite Tschandl et al., Sci. Data 5, 180161 (2018)."
        )
    return f"""# {config.kind.upper()} ({config.arch}) anomaly detector: {info["sweep"]}/{info["trial_id"]}

## What it is
{"A variational autoencoder" if config.kind == "vae" else "An autoencoder"} trained only on *normal* dermoscopy images
({", ".join(protocol["normal"])}; protocol `{protocol["name"]}`). An image it reconstructs badly is unusual:
its anomaly score is {score}. Images scoring above the threshold **{fmt(info["threshold"], "n/a")}** are flagged as
possible {", ".join(protocol["anomalous"])}. The threshold maximised F1 on the validation split; test labels
never chose anything.{threshold_warning(info)}

Ranked {info["rank"]} of its sweep by `{info["ranked_by"]}`; {info["epochs_run"]} epoch(s), seed {info["seed"]},
latent size {config.latent_dim}, {fmt(info["model"]["n_params"], "n/a")} parameters.

## Data
`{data["name"]}` ({fmt(data.get("count"), "n/a")} images, fingerprint `{data["fingerprint"]}`), split by lesion into
train/val/test. Test set: `{info["test_set"]}`.

## Preprocessing (applied by `hamtune score`)
{preprocessing_text(pre)}

## Golden vectors
{golden_text(info)}

## Metrics
| metric | val | test |
|---|---|---|
{chr(10).join(rows)}

## Intended use and limits
- Research on unsupervised anomaly detection and on hyperparameter search; **not a medical device** and not for
  diagnosis or triage of any patient.
- Scores are only meaningful for images prepared like the training data (dermoscopy, same preprocessing);
  other photographs, other devices and other populations shift the score distribution and the threshold.
- A low score does not mean benign: the model never saw anomalies during training.
- {provenance}

## Files
{files_section(files or [WEIGHTS, SCORE_STATE, CONFIG, META, CARD])}

Score images with: `hamtune score THIS_FOLDER IMAGES... --out scores.csv`.
"""


def _what(info: dict, bundles: list[Bundle]) -> str:
    model = info.get("model", {})
    if model.get("chosen") == "seeds":
        seeds = ", ".join(str(seed) for seed in sorted(b.config.seed for b in bundles))
        offered = model.get("of", len(bundles))
        if isinstance(offered, int) and offered > len(bundles):
            return (
                f"One configuration trained on {offered} seeds in `{bundles[0].info.get('sweep')}`, of which the "
                f"{len(bundles)} best on validation ({seeds})"
            )
        return f"One configuration trained on {len(bundles)} seeds ({seeds}) in `{bundles[0].info.get('sweep')}`"
    return f"The {len(bundles)} best trials of sweep `{bundles[0].info.get('sweep')}` by validation"


def ensemble_card(info: dict, bundles: list[Bundle], files: list[str] | None = None) -> str:
    """The model card of an ensemble: what it combines, how, and how well; the members' cards hold the rest."""
    lines = "\n".join(
        f"| {m['path']} | {b.info['trial_id']} | {b.config.kind}/{b.config.arch} | {b.config.score} | "
        f"{m['center']:.4g} | {m['scale']:.4g} |"
        for m, b in zip(info["members"], bundles)
    )
    metrics, warning, nan = info["metrics"], threshold_warning(info), float("nan")
    return f"""# Ensemble of {len(bundles)} anomaly detectors: {info["sweep"]}/{info["trial_id"]}

{_what(info, bundles)}; each member's score is standardised
by its mean and standard deviation on the validation normals, and the ensemble's score is their mean. Images
scoring above **{info["threshold"]:.4g}** (the F1-maximising threshold on validation) are flagged. Test labels
chose nothing. Validation AUROC {metrics.get("val_auroc", nan):.4g}, test AUROC {metrics.get("test_auroc", nan):.4g}.{warning}

| member | trial | model | score | validation mean | validation std |
|---|---|---|---|---|---|
{lines}

Each member folder is an ordinary bundle with its own model card (data, preprocessing, intended use and
limits apply to the ensemble too: **not a medical device**). Score images with:
`hamtune score THIS_FOLDER IMAGES... --out scores.csv`.

## Preprocessing (applied by `hamtune score`)
{preprocessing_text(info["preprocess"])}

## Golden vectors
{golden_text(info)}

## Files
{files_section(files or [], ensemble=True)}
"""
