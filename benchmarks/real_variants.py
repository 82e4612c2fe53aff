"""Variants of a preset against the preset itself, the same seeds, on the real images: does a training change help?

Reads the results folders that `hamtune train --preset P --seeds 5 --set seed=0 [--set KEY=VALUE ...]` wrote, one
for the preset as it is (`--reference`) and one per variant (`--variants`), and the baselines of the same split. Per
folder: the seeds' validation and test AUROC (mean +- sd, 95% t-interval), the paired (same-seed) difference to the
reference on validation and on test (95% t-interval), and the seed ensemble's test AUROC minus the best baseline chosen
on validation (non-learned ones included; paired bootstrap over the test images). A variant is kept only where its
paired validation difference is above 0 (interval and all); test is only reported.

    python benchmarks/real_variants.py results/ham10000-real --protocol nevus --reference denoise-nevus-none \
        --variants denoise-nevus-coarse-0.1 denoise-nevus-coarse-0.2 denoise-nevus-mask-0.25
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from hamtune.results.intervals import Interval, compare, signed
from hamtune.results.reproduction import spread
from hamtune.results.store import load_results

METRICS = ("val_auroc", "test_auroc")


def seeds_of(folder: Path) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """The seed rows by seed, the seed-ensemble row, and the folder's per-image scores."""
    trials, _, scores = load_results(folder)
    seeds = trials[trials["kind"] != "ensemble"].set_index("seed").sort_index()
    return seeds, trials[trials["kind"] == "ensemble"].iloc[0], scores


def interval(values: np.ndarray) -> list[float]:
    mean, sd, low, high, _, _ = spread(np.asarray(values, dtype=float))
    return [mean, sd, low, high]


def summarise(root: Path, protocol: str, reference: str, variants: list[str]) -> dict:
    base_trials, _, base_scores = load_results(root / f"real-baselines-{protocol}")
    floor = base_trials.sort_values("val_auroc", ascending=False, kind="stable").iloc[0]
    ref_seeds, _, _ = seeds_of(root / reference)
    rows = []
    for name in [reference, *variants]:
        seeds, ensemble, scores = seeds_of(root / name)
        shared = seeds.index.intersection(ref_seeds.index)
        both = pd.concat([scores.assign(sweep=name), base_scores.assign(sweep=floor["sweep"])], ignore_index=True)
        lead = compare(pd.Series({**ensemble.to_dict(), "sweep": name}), floor, both)
        rows.append(
            {
                "folder": name,
                "seeds": [int(s) for s in seeds.index],
                **{metric: interval(seeds[metric].to_numpy(float)) for metric in METRICS},
                **{
                    f"{metric}_minus_reference": interval((seeds.loc[shared, metric] - ref_seeds.loc[shared, metric]).to_numpy(float))
                    for metric in METRICS
                },
                "ensemble_val_auroc": float(ensemble["val_auroc"]),
                "ensemble_test_auroc": float(ensemble["test_auroc"]),
                "ensemble_minus_floor": [lead.value, lead.low, lead.high] if lead else None,
            }
        )
    for row in rows[1:]:
        row["kept"] = bool(row["val_auroc_minus_reference"][2] > 0)
    return {
        "protocol": protocol,
        "floor": {"model": str(floor["model"]), "val_auroc": float(floor["val_auroc"]), "test_auroc": float(floor["test_auroc"])},
        "rows": rows,
    }


def difference(values: list[float]) -> str:
    mean, _, low, high = values
    return f"{mean:+.3f} [{low:+.3f}, {high:+.3f}]"


def printed(found: dict) -> str:
    floor = found["floor"]
    lines = [
        f"{found['protocol']}: floor chosen on validation {floor['model']} (val {floor['val_auroc']:.3f}, test {floor['test_auroc']:.3f})",
        "folder | val mean +- sd | test mean +- sd [95%] | val - ref [95%] | test - ref [95%] | ensemble val / test | "
        "ensemble - floor [95%] | kept",
    ]
    for row in found["rows"]:
        val, test = row["val_auroc"], row["test_auroc"]
        dv, dt = row["val_auroc_minus_reference"], row["test_auroc_minus_reference"]
        lead = row["ensemble_minus_floor"]
        reference = "kept" not in row
        paired = "reference | reference" if reference else f"{difference(dv)} | {difference(dt)}"
        lines.append(
            f"{row['folder']} | {val[0]:.3f} +- {val[1]:.3f} | {test[0]:.3f} +- {test[1]:.3f} [{test[2]:.3f}, {test[3]:.3f}] | "
            + paired
            + f" | {row['ensemble_val_auroc']:.3f} / {row['ensemble_test_auroc']:.3f} | "
            + ("n/a" if lead is None else signed(Interval(*lead)))
            + (" | -" if reference else f" | {'yes' if row['kept'] else 'no'}")
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("root", type=Path)
    parser.add_argument("--protocol", required=True, choices=("nevus", "cancer"))
    parser.add_argument("--reference", required=True, help="the folder of the preset as it is")
    parser.add_argument("--variants", nargs="+", required=True, help="the folders of its variants, trained on the same seeds")
    parser.add_argument("--out", type=Path, default=None, help="also write the summary as JSON here")
    args = parser.parse_args()
    found = summarise(args.root, args.protocol, args.reference, args.variants)
    print(printed(found))
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, default=float))
    return 0


if __name__ == "__main__":
    sys.exit(main())
