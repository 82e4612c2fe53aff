"""Quality of the CNN presets without batch norm: norm=none vs norm=batch, the same seeds, on the real images.

A norm-free CNN removes the batch norms' memory-bound share of the CPU step (cnn_step_variants.py);
this says what it costs in anomaly detection. Each preset (one per protocol) is trained with each
norm for the same seeds, one after another in this process (hamtune.train.loop.train, the epoch
`hamtune train` delivers, so validation chooses it), and each seed's validation and test AUROC are
kept. Reported per preset and norm: mean, sd and 95% t-interval over the seeds; and the paired
(same-seed) difference none - batch with its 95% t-interval. The choice between the norms is made
on validation; test is only reported.

  python benchmarks/norm_quality.py --data ~/.cache/hamtune/prepared/release-ham10000_real-64px-center-3ch-ac98bc6175
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.results.reproduction import spread
from hamtune.train.config import build_config
from hamtune.train.loop import train
from hamtune.train.single import OBJECTIVE, load_data

NAME = "norm_quality"
NORMS = ("batch", "none")
METRICS = ("val_auroc", "test_auroc")


def summary(values: list[float]) -> dict:
    """Mean, sd and 95% t-interval of one metric over the seeds (hamtune.results.reproduction.spread)."""
    mean, sd, low, high, _, _ = spread(np.asarray(values, dtype=float))
    return {"mean": mean, "sd": sd, "ci95": [low, high], "n": len(values)}


def shown(s: dict) -> str:
    return f"{s['mean']:.4f} ± {s['sd']:.4f} [{s['ci95'][0]:.4f}, {s['ci95'][1]:.4f}]"


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a prepared cache of the real images (quick: a synthetic 28 px one)")
    parser.add_argument("--presets", default="ham-best,ham-best-cancer", help="comma-separated presets (one per protocol)")
    parser.add_argument("--seeds", type=int, default=None, help="seeds 0..N-1 (default 5, quick 2)")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    sets = {"image_size": 28, "cnn_channels": 8, "latent_dim": 16, "epochs": 1} if args.quick else {}
    args.data = common.real_or_quick_data(args)
    seeds = list(range(args.seeds or (2 if args.quick else 5)))
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    presets = []
    for preset in args.presets.split(","):
        base = build_config({"preset": preset, **sets})
        data, base = load_data(args.data, base, progress=False)
        runs = {norm: [] for norm in NORMS}
        for seed in seeds:
            for norm in NORMS:
                began = time.perf_counter()
                result = train(base.replace(norm=norm, seed=seed), data, selection=OBJECTIVE)
                final = result.final
                runs[norm].append(
                    {
                        "seed": seed,
                        "status": result.status,
                        "epoch": final.get("epoch"),
                        **{m: final.get(m) for m in METRICS},
                        "wall_s": time.perf_counter() - began,
                    }
                )
                print(
                    f"  {preset} norm={norm} seed={seed}: val {final.get('val_auroc'):.4f} test {final.get('test_auroc'):.4f} "
                    f"({time.perf_counter() - began:.0f} s)",
                    flush=True,
                )
        stats = {norm: {m: summary([r[m] for r in runs[norm]]) for m in METRICS} for norm in NORMS}
        paired = {m: summary([n[m] - b[m] for n, b in zip(runs["none"], runs["batch"])]) for m in METRICS}
        chosen = max(NORMS, key=lambda norm: stats[norm]["val_auroc"]["mean"])
        presets.append(
            {
                "preset": preset,
                "protocol": base.protocol,
                "epochs": base.epochs,
                "score": base.score,
                "seeds": seeds,
                "runs": runs,
                "stats": stats,
                "paired_none_minus_batch": paired,
                "chosen_by_val": chosen,
            }
        )
    rows = []
    for p in presets:
        for norm in NORMS:
            rows.append({"preset": p["preset"], "norm": norm, **{m: shown(p["stats"][norm][m]) for m in METRICS}})
        rows.append(
            {"preset": p["preset"], "norm": "none - batch (paired)", **{m: shown(p["paired_none_minus_batch"][m]) for m in METRICS}}
        )
    print(
        common.table(
            rows,
            [
                ("preset", "preset"),
                ("norm", "norm"),
                ("val AUROC mean ± sd [95% CI]", "val_auroc"),
                ("test AUROC mean ± sd [95% CI]", "test_auroc"),
            ],
        )
    )
    for p in presets:
        print(f"{p['preset']}: chosen by validation: norm={p['chosen_by_val']}")
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "data": args.data,
        "threads": args.threads,
        "selection": list(OBJECTIVE),
        "presets": presets,
        "table": rows,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
