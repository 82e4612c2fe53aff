"""Run classical baselines on exactly the deep models' splits and record them as results rows.

The split plan, the protocol's labels, the val-chosen threshold and every metric come from the same
functions a training run uses (plan_splits, evaluate.detection_metrics), so a baseline row ranks in
the same leaderboard as the sweep it is compared with.
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hamtune.baselines.classical import Method, Scored, pixels
from hamtune.data.prepare import Prepared
from hamtune.data.splits import Protocol, get_protocol
from hamtune.results.store import ResultsWriter, trial_row
from hamtune.train import metrics
from hamtune.train.config import TrainConfig
from hamtune.train.data import plan_splits
from hamtune.train.evaluate import detection_metrics
from hamtune.train.loop import sample_picks

# TrainConfig fields that define which images a model is trained and tested on; the rest describe
# a network and are null for a classical row.
DATA_KEYS = ("protocol", "split", "val_fraction", "test_fraction", "split_seed", "max_train_images",
             "image_size", "crop", "channels", "seed")
RECONSTRUCTION = ("mse", "psnr", "ssim")
SSIM_BATCH = 256


@dataclass
class Split:
    """One evaluated split: flattened pixels and what the metrics need about each image."""

    x: np.ndarray
    labels: np.ndarray
    dx: np.ndarray
    image_id: np.ndarray
    shape: tuple[int, int, int]  # H, W, C


def _split(data: Prepared, rows: np.ndarray, labels: np.ndarray) -> Split:
    meta = data.meta
    return Split(pixels(data.images[rows]), labels[rows], meta["dx"].to_numpy(str)[rows],
                 meta["image_id"].to_numpy(str)[rows], tuple(data.images.shape[1:]))


def reconstruction_terms(split: Split, scored: Scored) -> dict[str, np.ndarray]:
    """Per-image MSE, PSNR and SSIM of a reconstruction, by the functions the deep models are measured with."""
    h, w, c = split.shape
    out: dict[str, list[np.ndarray]] = {k: [] for k in RECONSTRUCTION}
    for start in range(0, len(split.x), SSIM_BATCH):
        x = torch.from_numpy(split.x[start : start + SSIM_BATCH]).view(-1, h, w, c).permute(0, 3, 1, 2)
        recon = torch.from_numpy(scored.reconstructions[start : start + SSIM_BATCH]).view(-1, h, w, c).permute(0, 3, 1, 2)
        mse = (recon - x).pow(2).flatten(1).mean(1)
        for key, value in (("mse", mse), ("psnr", metrics.psnr(mse)), ("ssim", metrics.ssim(recon, x))):
            out[key].append(value.double().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def evaluate_method(val: Split, test: Split, val_scored: Scored, test_scored: Scored, protocol: Protocol) -> tuple[dict, pd.DataFrame]:
    """The deep models' metrics for one baseline: threshold from val only, then test."""
    val_terms = reconstruction_terms(val, val_scored) if val_scored.reconstructions is not None else {}
    test_terms = reconstruction_terms(test, test_scored) if test_scored.reconstructions is not None else {}
    normal = val.labels == 0
    val_loss = float(val_terms["mse"][normal].mean()) if val_terms and normal.any() else None
    out = detection_metrics(val, val_terms, val_scored.scores, test, test_terms, test_scored.scores, protocol, val_loss)
    table = pd.DataFrame({"image_id": test.image_id, "dx": test.dx, "label": test.labels.astype(np.int8),
                          "score": test_scored.scores})
    if test_terms:
        table["mse"], table["ssim"] = test_terms["mse"], test_terms["ssim"]
    return out, table


def samples(test: Split, scored: Scored) -> dict[str, np.ndarray]:
    """A few test originals and their reconstructions, as a deep model's samples (PCA only)."""
    if scored.reconstructions is None:
        return {}
    pick = sample_picks(test.labels)

    def to_uint8(x: np.ndarray) -> np.ndarray:
        return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8).reshape(-1, *test.shape)

    return {"original": to_uint8(test.x[pick]), "reconstruction": to_uint8(scored.reconstructions[pick]),
            "image_id": test.image_id[pick], "label": test.labels[pick].astype(np.int8), "dx": test.dx[pick]}


def trial_id(method: Method, config: TrainConfig, data: Prepared, test_data: Prepared | None) -> str:
    """The same method on the same data and splits is the same trial: a re-run replaces its row."""
    key = json.dumps([method.name, {k: getattr(config, k) for k in DATA_KEYS}, data.fingerprint,
                      test_data.fingerprint if test_data else None], sort_keys=True)
    return f"{method.name}-{hashlib.blake2b(key.encode(), digest_size=4).hexdigest()}"


def run_baselines(
    config: TrainConfig,
    data: Prepared,
    methods: list[Method],
    results_dir: Path,
    name: str,
    test_data: Prepared | None = None,
) -> list[dict]:
    """Fit every method on the training normals, score val and test, write one results row each."""
    plan = plan_splits(data, config, test_data)
    protocol = get_protocol(config.protocol)
    train = pixels(data.images[plan.train])
    val = _split(data, plan.val, plan.labels)
    test = _split(test_data or data, plan.test, plan.test_labels)
    params = {k: (v if k in DATA_KEYS else None) for k, v in config.applicable().items()}
    writer = ResultsWriter(results_dir)
    rows = []
    for method in methods:
        started = time.perf_counter()
        scorer = method.fit(train)
        fitted = time.perf_counter()
        val_scored, test_scored = scorer(val.x), scorer(test.x)
        scored_s = time.perf_counter() - fitted
        result, table = evaluate_method(val, test, val_scored, test_scored, protocol)
        seconds = time.perf_counter() - started
        row = trial_row(
            sweep=name, trial_id=trial_id(method, config, data, test_data), status="completed", reason="",
            params={**params, "latent_dim": method.n_components}, history=[{**result, "epoch_time_s": seconds}],
            objective=("val_auroc", "max"), wall_time_s=seconds, device="cpu", data_manifest=data.located_manifest(),
            test_manifest=test_data.located_manifest() if test_data else None,
            extra={"model": method.name, "baseline": method.family, "epochs_run": None, "best_epoch": None,
                   "time_per_epoch_s": None, "fit_time_s": fitted - started, "score_time_s": scored_s,
                   "train_images": len(plan.train)},
        )
        writer.add(row, [], table, samples(test, test_scored))
        rows.append(row)
    return rows
