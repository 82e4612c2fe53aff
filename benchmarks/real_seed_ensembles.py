"""Seed ensembles on the real images: are they what a user should take away, and do they hold when drawn again?

Reads the results folders that `hamtune train --preset P --seeds 5 --set seed=B` wrote for several seed bases B
(each: 5 seed rows and their seed-ensemble row) and the baselines of the same split, and prints, per protocol:
the single seeds' val/test AUROC (mean +- sd over all seeds, 95% t-interval), each draw's seed ensemble (val,
test with its stratified bootstrap interval), the spread of the ensemble's test AUROC across draws, and the
paired bootstrap difference between each ensemble and the best baseline chosen on validation (non-learned ones
included). Nothing is chosen on test.

    python benchmarks/real_seed_ensembles.py results/ham10000-real --protocol nevus  --prefix ham-best-seeds-nevus-
    python benchmarks/real_seed_ensembles.py results/ham10000-real --protocol cancer --prefix ham-best-cancer-seeds-
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.results.intervals import Interval, bootstrap, compare, shown, signed
from hamtune.results.reproduction import spread
from hamtune.results.store import load_results


def summarise(root: Path, prefix: str, baselines: Path) -> dict:
    draws = sorted(p for p in root.glob(f"{prefix}*") if (p / "trials.parquet").exists())
    if not draws:
        raise SystemExit(f"no results folders {root}/{prefix}*")
    base_trials, _, base_scores = load_results(baselines)
    best_base = base_trials.sort_values("val_auroc", ascending=False, kind="stable").iloc[0]
    seeds, ensembles = [], []
    for folder in draws:
        trials, _, scores = load_results(folder)
        seeds.append(trials[trials["kind"] != "ensemble"])
        row = trials[trials["kind"] == "ensemble"].iloc[0]
        mine = scores[scores["trial_id"] == row["trial_id"]]
        interval = bootstrap(mine["label"].to_numpy(), mine["score"].to_numpy(float))["auroc"]
        both = pd.concat([scores.assign(sweep=folder.name), base_scores.assign(sweep=best_base["sweep"])], ignore_index=True)
        difference = compare(pd.Series({**row.to_dict(), "sweep": folder.name}), best_base, both)
        best_seed = trials[trials["kind"] != "ensemble"].sort_values("val_auroc", ascending=False).iloc[0]
        ensembles.append(
            {
                "draw": folder.name,
                "seeds": ",".join(str(int(s)) for s in sorted(trials.loc[trials["kind"] != "ensemble", "seed"])),
                "ensemble_val_auroc": float(row["val_auroc"]),
                "ensemble_test_auroc": float(row["test_auroc"]),
                "ensemble_test_auroc_interval": [interval.low, interval.high],
                "minus_best_baseline": [difference.value, difference.low, difference.high] if difference else None,
                "best_seed_by_val": {
                    "seed": int(best_seed["seed"]),
                    "val_auroc": float(best_seed["val_auroc"]),
                    "test_auroc": float(best_seed["test_auroc"]),
                },
                "ensemble_beats_best_seed_on_val": bool(row["val_auroc"] > best_seed["val_auroc"]),
            }
        )
    all_seeds = pd.concat(seeds, ignore_index=True)
    val = spread(all_seeds["val_auroc"].to_numpy(float))
    test = spread(all_seeds["test_auroc"].to_numpy(float))
    ens = np.array([e["ensemble_test_auroc"] for e in ensembles])
    return {
        "best_baseline": {
            "model": best_base["model"],
            "val_auroc": float(best_base["val_auroc"]),
            "test_auroc": float(best_base["test_auroc"]),
        },
        "single_seeds": {"n": len(all_seeds), "val_auroc": val[:4], "test_auroc": test[:4]},
        "draws": ensembles,
        "ensemble_test_auroc_across_draws": {"mean": float(ens.mean()), "sd": float(ens.std(ddof=1)) if len(ens) > 1 else math.nan},
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--protocol", required=True, choices=("nevus", "cancer"))
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--out", type=Path, default=None, help="also write the summary as JSON here")
    args = parser.parse_args()
    found = summarise(args.root, args.prefix, args.root / f"real-baselines-{args.protocol}")
    single = found["single_seeds"]
    print(
        f"{args.protocol}: best baseline on validation {found['best_baseline']['model']} "
        f"(val {found['best_baseline']['val_auroc']:.3f}, test {found['best_baseline']['test_auroc']:.3f})"
    )
    mean, sd, low, high = single["test_auroc"]
    vmean, vsd, _, _ = single["val_auroc"]
    print(f"single seeds (n={single['n']}): val {vmean:.3f} +- {vsd:.3f}; test {mean:.3f} +- {sd:.3f} [{low:.3f}, {high:.3f}]")
    for draw in found["draws"]:
        low, high = draw["ensemble_test_auroc_interval"]
        diff = draw["minus_best_baseline"]
        against = "n/a" if diff is None else signed(Interval(*diff))
        print(
            f"  {draw['draw']} (seeds {draw['seeds']}): ensemble val {draw['ensemble_val_auroc']:.3f}, test "
            f"{shown(draw['ensemble_test_auroc'], low, high)}; minus best baseline {against}; "
            f"best seed by val: seed {draw['best_seed_by_val']['seed']} val {draw['best_seed_by_val']['val_auroc']:.3f} "
            f"test {draw['best_seed_by_val']['test_auroc']:.3f}"
        )
    across = found["ensemble_test_auroc_across_draws"]
    print(f"ensemble test AUROC across {len(found['draws'])} draws of 5 seeds: {across['mean']:.3f} +- {across['sd']:.4f} (sd)")
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
