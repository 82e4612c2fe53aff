"""`hamtune ensemble`: the K best trials of a sweep BY VALIDATION, combined into one detector.

Each member scores an image as its trial did; each member's score is standardised by its mean and
standard deviation on the validation normals, and the ensemble's score is the mean of those. The
threshold is chosen on validation like any trial's. The ensemble is written as a row of the results
schema (so the report ranks it against single models and baselines) and as a bundle (members are
ordinary bundles) that `hamtune export` and `hamtune score` use like any model. Test labels choose
nothing: not the members, not the standardisation, not the threshold.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

import hamtune
from hamtune.config_fields import SPLIT_KEYS
from hamtune.data.prepare import Prepared
from hamtune.data.same_data import sweep_data
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError, UsageError
from hamtune.export.bundle import BUNDLE_VERSION, MEMBERS, Bundle, combine, finish, load_bundle, seal, write_bundle
from hamtune.files import atomic_folder
from hamtune.paths import relative_to_results
from hamtune.results.rank import DEEP_KINDS, ENSEMBLE, Metric, leaderboard, objective, top_trials
from hamtune.results.store import ResultsWriter, load_results, trial_row
from hamtune.train.data import plan_splits
from hamtune.train.evaluate import EvalSet, detection_metrics, normal_spread
from hamtune.train.loop import resolve_device

log = logging.getLogger(__name__)


def _check_same_split(bundles: list[Bundle]) -> None:
    first = bundles[0].config
    for bundle in bundles[1:]:
        differs = [k for k in SPLIT_KEYS if getattr(bundle.config, k) != getattr(first, k)]
        if differs:
            raise HamtuneError(
                f"the chosen trials do not share one split ({', '.join(differs)} differ); an ensemble combines trials of one sweep"
            )


def _eval_set(name: str, data: Prepared, rows: np.ndarray, labels: np.ndarray) -> EvalSet:
    """The split's labels and names; its pixels are scored through each member's bundle, as `hamtune score` does."""
    meta = data.meta
    return EvalSet(name, torch.empty(0), rows, labels[rows], meta["dx"].to_numpy(str)[rows], meta["image_id"].to_numpy(str)[rows])


def seed_members(directory: Path, trial_ids: list[str]) -> tuple[pd.DataFrame, Metric]:
    """The given trials (a configuration's seeds) as ranked rows, best by the validation objective first."""
    trials = load_results(directory)[0]
    metric = objective(trials)
    board = leaderboard(trials, metric)
    return board[board["trial_id"].astype(str).isin(set(trial_ids))].reset_index(drop=True), metric


def build_ensemble(
    directory: Path,
    top: int,
    results_root: Path,
    name: str | None = None,
    device: str = "auto",
    members: list[str] | None = None,
    keep: int | None = None,
) -> tuple[Path, dict]:
    """Combine the `top` best trials of `directory` (ranked by the sweep's validation objective), or the trials
    `members` names (a configuration's seeds; with `keep`, the `keep` of them best on validation), and record the
    ensemble in results/<name> (default: <sweep>-ensemble); returns that folder and its row."""
    if members is None and top < 2:
        raise UsageError(f"--top must be at least 2 for an ensemble, got {top}")
    board, metric = top_trials(directory, top, deep=True) if members is None else seed_members(directory, members)
    if not metric.column.startswith("val_"):
        raise HamtuneError(f"{directory}: ranked by {metric.column}; an ensemble chooses its members on validation only")
    board = board[board["kind"].isin(DEEP_KINDS)].reset_index(drop=True)
    offered = len(board)
    if members is not None and keep is not None:
        board = board.head(keep)
    if members is None and 2 <= len(board) < top:
        log.warning(
            "%s: only %d ranked deep trial(s); the ensemble has %d members, not the %d asked", directory, len(board), len(board), top
        )
    if "data_fingerprint" in board and len(board):  # members share the best trial's data; say who was left out
        same = board["data_fingerprint"].eq(board["data_fingerprint"].iloc[0])
        if not same.all():
            log.warning(
                "%s: %d of the top %d trial(s) ran on other data than the best (%s) and were left out of the ensemble",
                directory,
                int((~same).sum()),
                len(board),
                board.get("data_name", board["data_fingerprint"]).iloc[0],
            )
        board = board[same].reset_index(drop=True)
    if len(board) < 2:
        raise HamtuneError(f"{directory}: {len(board)} ranked deep trial(s) on one dataset; an ensemble needs at least 2")
    data, test_data = sweep_data(
        board,
        None,
        None,
        fix="restore the sweep's prepared cache at that path (hamtune data prepare SOURCE --out PATH) and run ensemble again",
    )
    sweep = str(board["sweep"].iloc[0])
    name = name or f"{Path(directory).resolve().name}-ensemble"
    ids = [str(t) for t in board["trial_id"]]
    label = f"ensemble-top{len(ids)}" if members is None else f"seed-ensemble-{len(ids)}" + (f"-of-{offered}" if len(ids) < offered else "")
    trial_id = f"{label}-{hashlib.blake2b(json.dumps(ids).encode(), digest_size=4).hexdigest()}"
    out = Path(results_root) / name
    target = resolve_device(device)
    started = time.perf_counter()
    with atomic_folder(out / "checkpoints" / trial_id) as tmp:
        paths = [write_bundle(row, tmp / MEMBERS / str(i + 1), metric.column, i + 1) for i, (_, row) in enumerate(board.iterrows())]
        bundles: list[Bundle] = []
        for p in paths:
            member = load_bundle(p)
            assert isinstance(member, Bundle)  # each member is one trial's bundle
            bundles.append(member)
        _check_same_split(bundles)
        config = bundles[0].config
        plan = plan_splits(data, config, test_data)
        val = _eval_set("val", data, plan.val, plan.labels)
        test = _eval_set("test", test_data or data, plan.test, plan.test_labels)
        scorers = [b.scorer(target) for b in bundles]
        val_parts = [scorer(data.images[plan.val]) for scorer in scorers]
        spreads = [normal_spread(s, val.labels) for s in val_parts]
        entries = [
            {"path": f"{MEMBERS}/{i + 1}", "trial_id": ids[i], "center": center, "scale": scale}
            for i, (center, scale) in enumerate(spreads)
        ]
        val_scores = combine(val_parts, entries)
        test_scores = combine([scorer((test_data or data).images[plan.test]) for scorer in scorers], entries)
        protocol = get_protocol(config.protocol)
        result = detection_metrics(val, {}, val_scores, test, {}, test_scores, protocol, None)
        seconds = time.perf_counter() - started
        params = {k: (getattr(config, k) if k in SPLIT_KEYS or k == "input_range" else None) for k in config.to_dict()}
        row = trial_row(
            sweep=name,
            trial_id=trial_id,
            status="completed",
            reason="",
            params={**params, "kind": ENSEMBLE},
            history=[{**result, "epoch_time_s": seconds}],
            objective=(metric.column, metric.mode),
            wall_time_s=seconds,
            device=str(target),
            data_manifest=data.located_manifest(),
            test_manifest=test_data.located_manifest() if test_data else None,
            checkpoint=relative_to_results(out / "checkpoints" / trial_id, out),
            extra={
                "model": label,
                "members": ",".join(ids),
                "members_from": sweep,
                "epochs_run": None,
                "best_epoch": None,
                "time_per_epoch_s": None,
            },
        )
        info = {
            **bundles[0].info,
            "bundle_version": BUNDLE_VERSION,
            "kind": ENSEMBLE,
            "members": entries,
            "sweep": name,
            "trial_id": trial_id,
            "score": f"mean of {len(ids)} standardised member scores",
            "threshold": result["threshold"],
            "metrics": {k: v for k, v in result.items() if k.startswith(("val_", "test_"))},
            "model": {"kind": ENSEMBLE, "members": ids, "chosen": "best by validation" if members is None else "seeds", "of": offered},
            "hamtune_version": hamtune.__version__,
            "rank": None,
            "ranked_by": metric.column,
            "exported_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        seal(tmp, info)
        finish(tmp, info, None, validation=(np.asarray(data.images[plan.val]), val.labels, val.image_id, val_scores))
    table = pd.DataFrame({"image_id": test.image_id, "dx": test.dx, "label": test.labels.astype(np.int8), "score": test_scores})
    ResultsWriter(out).add(row, [], table, None)
    return out, row
