"""TPE + ASHA vs random search without early stopping: best val AUROC per epoch of training spent.

Both search the same space (AE/VAE x MLP/CNN at 28 px on the synthetic data) under the same
budget of training epochs, with 3 seeds each, run alternately. Random search runs every trial to
max_epochs; TPE + ASHA gets more trials, most of which ASHA stops early. Each sweep's curve is
read back from its results: trials in the order they finished (trials.parquet), each adding the
epochs it ran (epochs.parquet); y is the best val AUROC of any epoch so far. Writes a Plotly
figure (search_efficiency.html) next to the JSON.

  python benchmarks/search_efficiency.py
"""

from __future__ import annotations

import contextlib
import io
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.data.prepare import Prepared
from hamtune.results.store import load_results
from hamtune.sweep.space import parse_space
from hamtune.sweep.tune import runner

NAME = "search_efficiency"
TARGET = 0.95
METHODS = {
    "random, no early stopping": {"sampler": "random", "scheduler": "none"},
    "TPE + ASHA": {"sampler": "tpe", "scheduler": "asha"},
}
PARAMS = {
    "kind": {"choice": ["ae", "vae"]},
    "arch": {"choice": ["mlp", "cnn"]},
    "latent_dim": {"int": [4, 64], "log": True},
    "batch_size": {"choice": [32, 64, 128]},
    "lr": {"float": [3e-4, 1e-2], "log": True},
    "rebalance": {"choice": ["none", "weighted"]},
    "mlp_width": {"choice": [64, 128, 256], "when": {"arch": "mlp"}},
    "cnn_channels": {"choice": [8, 16], "when": {"arch": "cnn"}},
    "beta": {"float": [0.01, 1.0], "log": True, "when": {"kind": "vae"}},
}


def space_for(method: str, seed: int, data: Prepared, trials: int, max_epochs: int, folder: Path):
    sampler = {"name": METHODS[method]["sampler"], "seed": seed}
    if sampler["name"] == "tpe":
        sampler["n_startup_trials"] = max(2, trials // 4)
    scheduler = {"name": "asha", "grace_period": 1, "reduction_factor": 2} if METHODS[method]["scheduler"] == "asha" else "none"
    raw = {
        "name": "efficiency",
        "data": str(data.path),
        "protocol": "cancer",
        "seed": seed,
        "objective": {"metric": "val_auroc", "mode": "max"},
        "sampler": sampler,
        "scheduler": scheduler,
        "num_samples": trials,
        "max_epochs": max_epochs,
        "resources": {"cpus": 1},
        "fixed": {"image_size": 28, "device": "cpu"},
        "params": PARAMS,
    }
    return parse_space(raw, folder / "efficiency.yaml")


def curve(directory: Path) -> pd.DataFrame:
    """Per finished trial (in finish order): cumulative epochs spent and the best val AUROC so far."""
    trials, epochs, _ = load_results(directory)
    per_trial = epochs.groupby("trial_id").agg(epochs=("epoch", "size"), best=("val_auroc", "max"))
    order = per_trial.reindex(trials["trial_id"]).fillna({"epochs": 0})
    best = order["best"].astype(float).where(np.isfinite(order["best"].astype(float)))
    return pd.DataFrame(
        {
            "trial_id": order.index,
            "epochs": order["epochs"].astype(int).cumsum().to_numpy(),
            "best_val_auroc": best.cummax().to_numpy(),
            "test_auroc_of_best": _test_of_best(trials),
        }
    )


def _test_of_best(trials: pd.DataFrame) -> np.ndarray:
    """The test AUROC (of its delivered, best-validation epoch) of the trial that is val-best so far: what a user
    would report."""
    val = pd.to_numeric(trials.get("val_auroc"), errors="coerce").to_numpy(float)
    test = pd.to_numeric(trials.get("test_auroc"), errors="coerce").to_numpy(float)
    out, best, chosen = [], -math.inf, math.nan
    for v, t in zip(val, test):
        if np.isfinite(v) and v > best:
            best, chosen = v, t
        out.append(chosen)
    return np.asarray(out)


def at_budget(frame: pd.DataFrame, budget: int) -> pd.Series:
    """The curve's last point within the budget."""
    inside = frame[frame["epochs"] <= budget]
    return inside.iloc[-1] if len(inside) else pd.Series({"epochs": 0, "best_val_auroc": math.nan, "test_auroc_of_best": math.nan})


def epochs_to_reach(frame: pd.DataFrame, target: float, budget: int) -> int | None:
    hit = frame[(frame["best_val_auroc"] >= target) & (frame["epochs"] <= budget)]
    return int(hit["epochs"].iloc[0]) if len(hit) else None


def figure(curves: dict[tuple[str, int], pd.DataFrame], budget: int, target: float, path: Path) -> None:
    import plotly.graph_objects as go

    colours = dict(zip(METHODS, ("#7f7f7f", "#1f77b4")))
    dashes = ("solid", "dash", "dot", "dashdot")
    fig = go.Figure()
    for (method, seed), frame in curves.items():
        fig.add_trace(
            go.Scatter(
                x=[0, *frame["epochs"]],
                y=[None, *frame["best_val_auroc"]],
                mode="lines+markers",
                line_shape="hv",
                name=f"{method}, seed {seed}",
                legendgroup=method,
                line=dict(color=colours[method], dash=dashes[seed % len(dashes)]),
                marker=dict(size=5),
                customdata=np.stack([frame["trial_id"], frame["test_auroc_of_best"]], axis=1),
                hovertemplate="%{x} epochs: best val AUROC %{y:.4f}<br>(test AUROC of that trial %{customdata[1]:.4f})<extra></extra>",
            )
        )
    fig.add_hline(y=target, line=dict(color="#d62728", dash="dot"), annotation_text=f"{TARGET:.0%} of the best val AUROC found")
    fig.add_vline(x=budget, line=dict(color="#2ca02c", dash="dot"), annotation_text="common epoch budget")
    fig.update_layout(
        title="Search efficiency: best val AUROC by training epochs spent (trials in finish order)",
        xaxis_title="training epochs spent (cumulative)",
        yaxis_title="best val AUROC so far",
        template="plotly_white",
        height=520,
    )
    fig.write_html(path, include_plotlyjs="cdn", full_html=True)


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=None, help="seeds per method (default 3, quick 1)")
    parser.add_argument("--random-trials", type=int, default=None, help="random-search trials (default 20, quick 2)")
    parser.add_argument("--max-epochs", type=int, default=None, help="epochs of a trial that is not stopped (default 4, quick 2)")
    parser.add_argument("--images", type=int, default=None, help="synthetic images at 28 px (default 1000, quick 120)")
    args = parser.parse_args(argv)
    seeds = args.seeds or (1 if args.quick else 3)
    random_trials = args.random_trials or (2 if args.quick else 20)
    max_epochs = args.max_epochs or (2 if args.quick else 4)
    budget = random_trials * max_epochs
    trials = {"random, no early stopping": random_trials, "TPE + ASHA": 2 * random_trials}
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    data = common.synthetic_prepared(args.images or (120 if args.quick else 1000), 28)
    with runner.tune_settings():  # Ray starts as a sweep starts it (each run_sweep sets them again for itself)
        runner.start_ray(None, len(os.sched_getaffinity(0)))
    root = Path(tempfile.mkdtemp(prefix="hamtune-search-bench-"))
    curves: dict[tuple[str, int], pd.DataFrame] = {}
    seconds: dict[tuple[str, int], float] = {}
    try:
        for seed in range(seeds):
            for method in METHODS:
                space = space_for(method, seed, data, trials[method], max_epochs, root)
                begun = time.perf_counter()
                with contextlib.redirect_stdout(io.StringIO()):
                    directory = runner.run_sweep(space, runner.SweepOptions(name=f"{method.split()[0].lower()}-{seed}", results_root=root))
                seconds[method, seed] = time.perf_counter() - begun
                curves[method, seed] = curve(directory)
                print(
                    f"  {method:26s} seed {seed}: {trials[method]} trials, {int(curves[method, seed]['epochs'].iloc[-1])} "
                    f"epochs, best val AUROC {curves[method, seed]['best_val_auroc'].max():.4f} "
                    f"({seconds[method, seed]:.0f} s)",
                    flush=True,
                )
    finally:
        shutil.rmtree(root, ignore_errors=True)
    best_found = max(float(np.nanmax(c["best_val_auroc"])) for c in curves.values() if c["best_val_auroc"].notna().any())
    target = TARGET * best_found
    rows, per_run = [], []
    for method in METHODS:
        runs = [(seed, curves[method, seed]) for seed in range(seeds)]
        reached = [epochs_to_reach(c, target, budget) for _, c in runs]
        final = [at_budget(c, budget) for _, c in runs]
        hits = [r for r in reached if r is not None]
        rows.append(
            {
                "method": method,
                "trials": trials[method],
                "epochs_spent": float(np.median([int(c["epochs"].iloc[-1]) for _, c in runs])),
                "best_at_budget": float(np.nanmedian([f["best_val_auroc"] for f in final])),
                "test_of_best": float(np.nanmedian([f["test_auroc_of_best"] for f in final])),
                "epochs_to_target": float(np.median(hits)) if len(hits) == len(runs) else None,
                "reached": f"{len(hits)}/{len(runs)}",
                "per_seed": " / ".join("-" if r is None else str(r) for r in reached),
                "seconds": float(np.median([seconds[method, s] for s, _ in runs])),
            }
        )
        per_run += [
            {"method": method, "seed": s, "epochs_to_target": r, "seconds": seconds[method, s], "curve": c.to_dict(orient="list")}
            for (s, c), r in zip(runs, reached)
        ]
    print(
        common.table(
            rows,
            [
                ("method", "method"),
                ("trials", "trials"),
                ("epochs run", "epochs_spent"),
                (f"best val AUROC @{budget} epochs", "best_at_budget"),
                ("its test AUROC", "test_of_best"),
                (f"epochs to {TARGET:.0%} of best ({target:.3f}), median", "epochs_to_target"),
                ("per seed", "per_seed"),
                ("seeds reaching it", "reached"),
                ("sweep s", "seconds"),
            ],
        )
    )
    out = Path(args.out) if args.out else (common.QUICK_RESULTS if args.quick else common.RESULTS)
    out.mkdir(parents=True, exist_ok=True)
    html = out / f"{NAME}.html"
    figure(curves, budget, target, html)
    a, b = (r["epochs_to_target"] for r in rows)
    ratio = a / b if a and b else None
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "images": int(data.manifest["count"]),
        "image_size": 28,
        "params": PARAMS,
        "methods": METHODS,
        "seeds": seeds,
        "max_epochs": max_epochs,
        "budget_epochs": budget,
        "trials": trials,
        "best_val_auroc_found": best_found,
        "target": target,
        "target_fraction": TARGET,
        "table": rows,
        "runs": per_run,
        "epochs_to_target_ratio_random_over_tpe_asha": ratio,
        "figure": html.name,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}\nfigure: {html}")
    return payload


if __name__ == "__main__":
    main()
