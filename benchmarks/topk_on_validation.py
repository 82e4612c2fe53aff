"""How many of N seeds a seed ensemble should keep, decided on validation alone: top k (by each seed's own AUROC)
against all N, with the choice and the judgement on two disjoint halves of the validation split.

For each results folder of `hamtune train --seeds N` (its seeds' checkpoints), every seed scores the validation
images once. Then, over many random halvings of the validation lesions: the seeds are ranked by AUROC on half A, the
top k standardised on A's normals and averaged, and that ensemble's AUROC is measured on half B, which chose nothing.
The test split is not read; the k that wins here is what a default could rest on.

    python benchmarks/topk_on_validation.py results/ham10000-real/denoise-nevus-none results/ham10000-real/... \
        --halvings 200 --out benchmarks/results/topk_on_validation.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

from hamtune.data.same_data import sweep_data
from hamtune.export.bundle import Bundle, load_bundle, write_bundle
from hamtune.results.store import load_results
from hamtune.train.data import plan_splits
from hamtune.train.metrics import auroc


def validation_scores(folder: Path, data_path: Path | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(seeds x validation images) scores, the validation labels and lesion ids (`data_path`: the prepared cache, where
    it moved since; its fingerprint is checked)."""
    trials = load_results(folder)[0]
    seeds = trials[(trials["kind"] != "ensemble") & (trials["status"] == "completed")].sort_values("seed")
    data, _ = sweep_data(seeds, data_path, None)
    with tempfile.TemporaryDirectory() as tmp:
        bundles = [load_bundle(write_bundle(row, Path(tmp) / str(i), "val_auroc", i + 1)) for i, (_, row) in enumerate(seeds.iterrows())]
        assert all(isinstance(b, Bundle) for b in bundles)
        plan = plan_splits(data, bundles[0].config)  # one split: the seeds of one configuration share it
        rows = [b.scorer(torch.device("cpu"))(data.images[plan.val]) for b in bundles]
    labels = plan.labels[plan.val]
    lesions = data.meta["lesion_id"].to_numpy(str)[plan.val]
    return np.stack(rows), labels, lesions


def held_out(scores: np.ndarray, labels: np.ndarray, lesions: np.ndarray, halvings: int, seed: int = 0) -> np.ndarray:
    """(halvings x N) AUROC on half B of the top-k ensemble chosen and standardised on half A, k = 1..N."""
    rng = np.random.default_rng(seed)
    names = np.unique(lesions)
    out = np.empty((halvings, len(scores)))
    for h in range(halvings):
        chosen = rng.permutation(names)[: len(names) // 2]
        a = np.isin(lesions, chosen)
        b = ~a
        order = np.argsort([-auroc(labels[a], s[a]) for s in scores], kind="stable")
        normal = a & (labels == 0)
        standard = (scores - scores[:, normal].mean(1, keepdims=True)) / scores[:, normal].std(1, keepdims=True)
        for k in range(1, len(scores) + 1):
            out[h, k - 1] = auroc(labels[b], standard[order[:k]][:, b].mean(0))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folders", nargs="+", type=Path)
    parser.add_argument("--halvings", type=int, default=200)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--data", type=Path, default=None, help="the prepared cache, where it moved since the folders were written")
    args = parser.parse_args()
    found = {}
    print("folder | seeds | held-out val AUROC of top k, k = 1..N (mean over halvings) | best k | top 3 - all N [2.5%, 97.5% of halvings]")
    for folder in args.folders:
        scores, labels, lesions = validation_scores(folder, args.data)
        table = held_out(scores, labels, lesions, args.halvings)
        n = len(scores)
        gain = table[:, min(3, n) - 1] - table[:, n - 1]
        means = table.mean(0)
        found[folder.name] = {"seeds": n, "mean_by_k": means.tolist(), "top3_minus_all": [gain.mean(), *np.percentile(gain, [2.5, 97.5])]}
        print(
            f"{folder.name} | {n} | "
            + " ".join(f"{m:.4f}" for m in means)
            + f" | {int(means.argmax()) + 1} | {gain.mean():+.4f} [{np.percentile(gain, 2.5):+.4f}, {np.percentile(gain, 97.5):+.4f}]"
        )
    pooled = np.array([f["top3_minus_all"][0] for f in found.values()])
    print(
        f"pooled over {len(pooled)} folders: top 3 - all, mean {pooled.mean():+.4f}; above 0 in {int((pooled > 0).sum())} of {len(pooled)}"
    )
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
