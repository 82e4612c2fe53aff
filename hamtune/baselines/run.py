"""Run classical baselines on exactly the deep models' splits and record them as results rows.

The split plan, the protocol's labels, the val-chosen threshold and every metric come from the same
functions a training run uses (plan_splits, evaluate.detection_metrics), so a baseline row ranks in
the same leaderboard as the sweep it is compared with. A reconstructing method (PCA, blur, down/up-
sampling) is scored by each score the deep models use (`mse`, `ssim`, `mse+ssim` standardised on the
validation normals, by evaluate.anomaly_score) and writes one row per score; a method with several
settings (blur sigmas) keeps, per score, the setting with the best validation AUROC.
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

from hamtune.baselines.classical import Fit, Method, Scored, pixels
from hamtune.config_fields import DATA_KEYS
from hamtune.data.prepare import Prepared
from hamtune.data.splits import Protocol, get_protocol
from hamtune.results.layout import DEFAULT_OBJECTIVE
from hamtune.results.store import ResultsWriter, trial_row
from hamtune.train import metrics
from hamtune.train.config import TrainConfig
from hamtune.train.data import plan_splits
from hamtune.train.evaluate import ScoreState, anomaly_score, detection_metrics, fit_standardisation
from hamtune.train.loop import sample_picks

RECONSTRUCTION = ("mse", "psnr", "ssim")
SCORES = ("mse", "ssim", "mse+ssim")  # the deep models' reconstruction scores; `mse` rows keep the method's name
SSIM_BATCH = 256
OBJECTIVE = DEFAULT_OBJECTIVE


@dataclass
class Split:
    """One evaluated split: flattened pixels and what the metrics need about each image."""

    x: np.ndarray
    labels: np.ndarray
    dx: np.ndarray
    image_id: np.ndarray
    shape: tuple[int, int, int]  # H, W, C


def split_images(data: Prepared, rows: np.ndarray, labels: np.ndarray) -> Split:
    """One split's flattened pixels with the labels, diagnoses and ids a baseline's metrics need."""
    meta = data.meta
    return Split(
        pixels(data.images[rows]),
        labels[rows],
        meta["dx"].to_numpy(str)[rows],
        meta["image_id"].to_numpy(str)[rows],
        tuple(data.images.shape[1:]),
    )


def reconstruction_terms(split: Split, scored: Scored) -> dict[str, np.ndarray]:
    """Per-image MSE, PSNR and SSIM of a reconstruction, by the functions the deep models are measured with."""
    h, w, c = split.shape
    assert scored.reconstructions is not None  # called only for a reconstructing method
    out: dict[str, list[np.ndarray]] = {k: [] for k in RECONSTRUCTION}
    for start in range(0, len(split.x), SSIM_BATCH):
        x = torch.from_numpy(split.x[start : start + SSIM_BATCH]).view(-1, h, w, c).permute(0, 3, 1, 2)
        recon = torch.from_numpy(scored.reconstructions[start : start + SSIM_BATCH]).view(-1, h, w, c).permute(0, 3, 1, 2)
        mse = (recon - x).pow(2).flatten(1).mean(1)
        for key, value in (("mse", mse), ("psnr", metrics.psnr(mse)), ("ssim", metrics.ssim(recon, x))):
            out[key].append(value.double().numpy())
    return {k: np.concatenate(v) for k, v in out.items()}


def terms_of(split: Split, scored: Scored) -> dict[str, np.ndarray]:
    return reconstruction_terms(split, scored) if scored.reconstructions is not None else {}


def evaluate_method(
    val: Split,
    test: Split,
    val_scored: Scored,
    test_scored: Scored,
    protocol: Protocol,
    score: str | None = None,
    terms: tuple[dict, dict] | None = None,
) -> tuple[dict, pd.DataFrame]:
    """The deep models' metrics for one baseline: threshold from val only, then test. `score` None keeps the
    method's own score; `mse`, `ssim`, `mse+ssim` score its reconstructions as a deep model's are scored.
    `terms`: the (val, test) reconstruction terms when already computed."""
    val_terms, test_terms = terms if terms is not None else (terms_of(val, val_scored), terms_of(test, test_scored))
    val_scores, test_scores = val_scored.scores, test_scored.scores
    if score is not None:
        state = ScoreState()
        fit_standardisation(val_terms, val.labels, score, state)
        val_scores, test_scores = anomaly_score(val_terms, score, state), anomaly_score(test_terms, score, state)
    normal = val.labels == 0
    val_loss = float(val_terms["mse"][normal].mean()) if val_terms and normal.any() else None
    out = detection_metrics(val, val_terms, val_scores, test, test_terms, test_scores, protocol, val_loss)
    table = pd.DataFrame({"image_id": test.image_id, "dx": test.dx, "label": test.labels.astype(np.int8), "score": test_scores})
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

    return {
        "original": to_uint8(test.x[pick]),
        "reconstruction": to_uint8(scored.reconstructions[pick]),
        "image_id": test.image_id[pick],
        "label": test.labels[pick].astype(np.int8),
        "dx": test.dx[pick],
    }


def trial_id(model: str, config: TrainConfig, data: Prepared, test_data: Prepared | None) -> str:
    """The same model (method and score) on the same data and splits is the same trial: a re-run replaces its row."""
    key = json.dumps(
        [model, {k: getattr(config, k) for k in DATA_KEYS}, data.fingerprint, test_data.fingerprint if test_data else None], sort_keys=True
    )
    return f"{model}-{hashlib.blake2b(key.encode(), digest_size=4).hexdigest()}"


@dataclass
class Candidate:
    """One setting of a method, fitted and applied to val and test (reconstructions reduced to their terms)."""

    setting: str
    val: Scored
    test: Scored
    terms: tuple[dict, dict]
    samples: dict[str, np.ndarray]
    seconds: float


def fit_candidate(setting: str, fit: Fit, train: np.ndarray, val: Split, test: Split) -> Candidate:
    started = time.perf_counter()
    scorer = fit(train, val.shape)
    val_scored, test_scored = scorer(val.x), scorer(test.x)
    terms = (terms_of(val, val_scored), terms_of(test, test_scored))
    picked = samples(test, test_scored)
    val_scored.reconstructions = test_scored.reconstructions = None  # the terms hold what the metrics need
    return Candidate(setting, val_scored, test_scored, terms, picked, time.perf_counter() - started)


def model_name(method: Method, score: str | None) -> str:
    return method.name if score in (None, "mse") else f"{method.name}-{score}"


def _objective(result: dict) -> float:
    value = result.get(OBJECTIVE[0], np.nan)
    return value if np.isfinite(value) else -np.inf


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
    val = split_images(data, plan.val, plan.labels)
    test = split_images(test_data or data, plan.test, plan.test_labels)
    params = {k: (v if k in DATA_KEYS else None) for k, v in config.applicable().items()}
    writer = ResultsWriter(results_dir)
    rows = []
    for method in methods:
        candidates = [fit_candidate(setting, fit, train, val, test) for setting, fit in method.candidates]
        seconds = sum(c.seconds for c in candidates)
        for score in SCORES if method.reconstructs else (None,):
            evaluated = [(c, *evaluate_method(val, test, c.val, c.test, protocol, score, c.terms)) for c in candidates]
            chosen, result, table = max(evaluated, key=lambda item: _objective(item[1]))  # ties: the first setting
            model = model_name(method, score)
            row = trial_row(
                sweep=name,
                trial_id=trial_id(model, config, data, test_data),
                status="completed",
                reason="",
                params={**params, "latent_dim": method.n_components, "score": score},
                history=[{**result, "epoch_time_s": seconds}],
                objective=OBJECTIVE,
                wall_time_s=seconds,
                device="cpu",
                data_manifest=data.located_manifest(),
                test_manifest=test_data.located_manifest() if test_data else None,
                extra={
                    "model": model,
                    "baseline": method.family,
                    "baseline_setting": chosen.setting or None,
                    "epochs_run": None,
                    "best_epoch": None,
                    "time_per_epoch_s": None,
                    "train_images": len(plan.train),
                },
            )
            writer.add(row, [], table, chosen.samples)
            rows.append(row)
    return rows
