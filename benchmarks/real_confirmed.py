"""A confirmed sweep on the real images, as the README's table gives it: every row with its spread and interval.

Reads one sweep with a confirm stage (search trials, then the best K configurations on N more seeds each, and the
seed ensemble of the configuration with the best MEAN validation AUROC: `hamtune.deliver_confirmed`) and the
baselines of the same split, and prints per row: validation AUROC, test AUROC as mean +- sd over seeds with the
95% t-interval of the mean (configurations) or with its stratified 95% bootstrap interval (one deterministic
model: baselines, the delivered ensemble), and the paired bootstrap difference between the delivered ensemble
and the best baseline chosen on validation (non-learned ones included). Nothing is chosen on test.

    python benchmarks/real_confirmed.py results/ham10000-real/real-nevus-confirmed  results/ham10000-real/real-baselines-nevus
    python benchmarks/real_confirmed.py results/ham10000-real/real-cancer-confirmed results/ham10000-real/real-baselines-cancer
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

from hamtune.results.configurations import per_configuration, seed_rows
from hamtune.results.intervals import Interval, bootstrap, compare, shown, signed
from hamtune.results.rank import DEEP_KINDS, ENSEMBLE, objective
from hamtune.results.store import load_results


def _tested(row: pd.Series, scores: pd.DataFrame) -> dict:
    mine = scores[(scores["sweep"] == row["sweep"]) & (scores["trial_id"] == row["trial_id"])]
    interval = bootstrap(mine["label"].to_numpy(), mine["score"].to_numpy(float))["auroc"]
    return {"val_auroc": float(row["val_auroc"]), "test_auroc": float(row["test_auroc"]), "test_interval": [interval.low, interval.high]}


def summarise(sweep: Path, baselines: Path) -> dict:
    trials, _, scores = load_results(sweep)
    base_trials, _, base_scores = load_results(baselines)
    both = pd.concat([scores, base_scores], ignore_index=True)
    rows = {"baselines": [], "configurations": [], "delivered": None}
    ranked = base_trials.sort_values("val_auroc", ascending=False, kind="stable")
    for _, row in ranked.iterrows():
        rows["baselines"].append({"model": row["model"], **_tested(row, both)})
    best_base = ranked.iloc[0]
    seeds = seed_rows(trials[trials["kind"].isin(DEEP_KINDS)])
    table = per_configuration(seeds, objective(trials))
    for _, config in table[table["n"] >= 2].iterrows():
        rows["configurations"].append(
            {
                "config_id": config["config_id"],
                "n": int(config["n"]),
                **{k: config.get(k) for k in ("kind", "arch", "latent_dim", "lr", "score")},
                **{f"{m}_{s}": float(config[f"{m}_{s}"]) for m in ("val_auroc", "test_auroc") for s in ("mean", "sd", "ci_low", "ci_high")},
            }
        )
    delivered = trials[trials["kind"] == ENSEMBLE]
    if len(delivered):
        row = delivered.iloc[-1]
        difference = compare(row, best_base, both)
        rows["delivered"] = {
            "trial_id": row["trial_id"],
            "members": row["members"],
            **_tested(row, both),
            "minus_best_baseline": [difference.value, difference.low, difference.high] if difference else None,
        }
    search = trials[trials["stage"] == "search"] if "stage" in trials.columns else trials
    rows["trials"] = {"search": len(search), "confirm": int((trials.get("stage") == "confirm").sum())}
    rows["best_baseline"] = str(best_base["model"])
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("sweep", type=Path)
    parser.add_argument("baselines", type=Path)
    parser.add_argument("--out", type=Path, default=None, help="also write the summary as JSON here")
    args = parser.parse_args()
    found = summarise(args.sweep, args.baselines)
    print(f"{args.sweep.name}: {found['trials']['search']} search + {found['trials']['confirm']} confirm trials")
    print("| model | seeds | val AUROC | test AUROC |\n|---|---|---|---|")
    for base in found["baselines"]:
        mark = " (best on validation)" if base["model"] == found["best_baseline"] else ""
        test = shown(base["test_auroc"], *base["test_interval"])
        print(f"| baseline {base['model']}{mark} | deterministic | {base['val_auroc']:.3f} | {test} |")
    for config in found["configurations"]:
        print(
            f"| {config['kind']}/{config['arch']} latent {config['latent_dim']:.0f} lr {config['lr']:.2g} score {config['score']} "
            f"({config['config_id']}) | {config['n']} | {config['val_auroc_mean']:.3f} +- {config['val_auroc_sd']:.3f} | "
            f"{config['test_auroc_mean']:.3f} +- {config['test_auroc_sd']:.3f} "
            f"[{config['test_auroc_ci_low']:.3f}, {config['test_auroc_ci_high']:.3f}] |"
        )
    delivered = found["delivered"]
    if delivered:
        diff = delivered["minus_best_baseline"]
        print(
            f"| delivered: seed ensemble of the first configuration | {len(delivered['members'].split(','))} | "
            f"{delivered['val_auroc']:.3f} | {shown(delivered['test_auroc'], *delivered['test_interval'])} |"
        )
        if diff:
            verdict = "beats" if diff[1] > 0 else "does not beat"
            print(f"delivered minus the best baseline ({found['best_baseline']}), paired bootstrap: {signed(Interval(*diff))}: {verdict}")
    if args.out:
        args.out.write_text(json.dumps(found, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
