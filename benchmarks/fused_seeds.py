"""N seeds of one preset trained to completion: fused in one process vs packed processes vs sequential.

  fused       one process, torch's threads on all usable cores: hamtune.train.fused.train_group
  packed      one process per seed with 1 torch thread, as many at a time as there are usable cores
              (how a sweep packs trials that ask for 1 CPU each)
  sequential  one process on all cores training the seeds one after another (hamtune.train.loop.train)

Each alternative is timed from its processes' launch to their exit (imports, data loading, training
and evaluation of every seed), the three in turn for each N. Every seed's validation and test AUROC
are kept beside the times, so a fused seed can be checked against the same seed trained alone.
FLOPs (torch.utils.flop_counter, forward + backward of one training step, as train_throughput.py
counts them) over wall time give GFLOP/s, reported as a share of the float32 sgemm peak at the
same core count; the training share counts only the seconds spent in training epochs. Where the
fused target is missed, one grouped step is profiled (top ops by self CPU time).

  hamtune data prepare ../shared/data/ham10000_real --size 64
  python benchmarks/fused_seeds.py --data ~/.cache/hamtune/prepared/<that cache>
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from train_throughput import SGEMM_N, sgemm, step_flops

NAME = "fused_seeds"
MODES = ("fused", "packed", "sequential")
TARGET = 0.75  # fused wall time / packed wall time, for N = 4 and 8
TARGET_NS = (4, 8)


def worker(mode: str, data_spec: str, preset: str, sets: list[str], seeds: list[int], threads: int) -> dict:
    """Train `seeds` (fused, or one after another) in this process and describe each run."""
    torch.set_num_threads(threads)
    from hamtune.train.config import build_config, parse_assignments
    from hamtune.train.fused import train_group
    from hamtune.train.loop import train
    from hamtune.train.single import OBJECTIVE, load_data

    config = build_config({"preset": preset, **parse_assignments(sets)})
    data, config = load_data(data_spec, config, progress=False)
    configs = [config.replace(seed=s) for s in seeds]
    if mode == "fused":
        results = train_group(configs, data, selection=OBJECTIVE)
    else:
        results = [train(c, data, selection=OBJECTIVE) for c in configs]
    runs = []
    for result in results:
        n = len(result.run.train_set.index)
        train_s = sum(n / h["train_images_per_s"] for h in result.history)
        runs.append(
            {
                "seed": result.config.seed,
                "status": result.status,
                "epochs": len(result.history),
                "train_images": n,
                "train_s": train_s,
                "val_auroc": result.final.get("val_auroc"),
                "test_auroc": result.final.get("test_auroc"),
            }
        )
    # a fused group trains its members together: its training time is the longest member's, counted once
    train_s = max(r["train_s"] for r in runs) if mode == "fused" else sum(r["train_s"] for r in runs)
    return {
        "mode": mode,
        "threads": threads,
        "train_s": train_s,
        "runs": runs,
        "shape": [config.channels, config.image_size, config.image_size],
        "config": config.to_dict(),
    }


def launch(mode: str, args, seeds: list[int], threads: int) -> subprocess.Popen:
    command = [
        sys.executable,
        __file__,
        "--worker",
        mode,
        "--data",
        args.data,
        "--preset",
        args.preset,
        "--seeds",
        ",".join(map(str, seeds)),
        "--threads",
        str(threads),
    ]
    for item in args.set:
        command += ["--set", item]
    return subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env={**os.environ, "OMP_NUM_THREADS": str(threads)})


def collect(process: subprocess.Popen) -> dict:
    out, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"a {NAME} worker failed (exit {process.returncode}); run it alone to see why: {process.args}")
    return json.loads(out.strip().splitlines()[-1])


def measure(mode: str, args, n: int, cores: int) -> dict:
    """Wall time of N seeds in one mode, from launch to the last process's exit."""
    seeds = list(range(n))
    started = time.perf_counter()
    if mode == "packed":
        waiting, running, done = list(seeds), [], []
        while waiting or running:
            while waiting and len(running) < cores:
                running.append(launch(mode, args, [waiting.pop(0)], 1))
            done.append(collect(running.pop(0)))
        wall = time.perf_counter() - started
        runs = [r for d in done for r in d["runs"]]
        return {
            "mode": mode,
            "n": n,
            "wall_s": wall,
            "train_s": sum(d["train_s"] for d in done) / cores,
            "runs": runs,
            "shape": done[0]["shape"],
            "config": done[0]["config"],
        }
    out = collect(launch(mode, args, seeds, cores))
    return {
        "mode": mode,
        "n": n,
        "wall_s": time.perf_counter() - started,
        "train_s": out["train_s"],
        "runs": out["runs"],
        "shape": out["shape"],
        "config": out["config"],
    }


def make_group(config, shape: tuple[int, int, int], k: int):
    """K members (seeds 0..K-1, channels_last, fused AdamW) of `config` regrouped into one grouped model."""
    from hamtune.models import build_model
    from hamtune.train.fused import regroup
    from hamtune.train.loop import Run, make_optimizer

    cpu, runs = torch.device("cpu"), []
    for seed in range(k):
        torch.manual_seed(seed)
        model = build_model(config.model_spec(), tuple(shape)).to(memory_format=torch.channels_last)
        runs.append(Run(config, model, make_optimizer(model, config, cpu), None, cpu, None, None))
    return regroup(runs, tuple(shape), cpu)


def top_ops(step, steps: int = 3, top: int = 10) -> list[dict]:
    """Where `step` spends its CPU time over `steps` calls after one unrecorded call (torch.profiler, self time per op)."""
    from torch.profiler import profile

    step()
    with profile() as prof:
        for _ in range(steps):
            step()
    events = list(prof.key_averages())
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    ranked = sorted(events, key=lambda e: -e.self_cpu_time_total)[:top]
    return [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in ranked]


def profile_group(config_dict: dict, shape: list[int], k: int, threads: int, steps: int = 3, top: int = 10) -> list[dict]:
    """Where one grouped training step of K members spends its CPU time (torch.profiler, self time per op)."""
    from hamtune.train.config import TrainConfig
    from hamtune.train.fused import group_step

    torch.set_num_threads(threads)
    config = TrainConfig(**config_dict)
    group = make_group(config, tuple(shape), k)
    x = torch.rand(config.batch_size, k * shape[0], *shape[1:]).contiguous(memory_format=torch.channels_last)

    return top_ops(lambda: group_step(group, x), steps, top)


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a prepared cache of the real images (quick: a synthetic 28 px one)")
    parser.add_argument("--preset", default="ham-best")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a preset value")
    parser.add_argument("--ns", default=None, help="comma-separated seed counts (default 2,4,8; quick 2)")
    parser.add_argument("--worker", choices=("fused", "sequential", "packed"), default=None, help=argparse_hidden())
    parser.add_argument("--seeds", default="0", help=argparse_hidden())
    parser.add_argument("--threads", type=int, default=1, help=argparse_hidden())
    args = parser.parse_args(argv)
    if args.worker:
        seeds = [int(s) for s in args.seeds.split(",")]
        print(json.dumps(worker(args.worker, args.data, args.preset, args.set, seeds, args.threads)))
        return {}
    args.data = common.real_or_quick_data(args)
    if args.quick:
        args.set = ["image_size=28", "cnn_channels=8", "latent_dim=16", *args.set]
    ns = [int(v) for v in args.ns.split(",")] if args.ns else [2] if args.quick else [2, 4, 8]
    cores = len(os.sched_getaffinity(0))
    torch.set_num_threads(cores)
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    subprocess.run([sys.executable, "-c", "import hamtune.train.single"], check=True)  # warm the file cache: no first-launch penalty
    peak_timer, peaks, cells = sgemm(torch.device("cpu")), [], []
    for n in ns:
        peak_timer()
        peaks.append(2 * SGEMM_N**3 / peak_timer() / 1e9)
        for mode in MODES:
            cell = measure(mode, args, n, cores)
            cells.append(cell)
            print(f"  N={n} {mode:10s} {cell['wall_s']:7.1f} s (load {os.getloadavg()[0]:.1f})", flush=True)
    peak = common.median(peaks)
    shape = cells[0]["shape"]
    from hamtune.train.config import TrainConfig

    flops_per_image = step_flops(TrainConfig(**cells[0]["config"]), tuple(shape), torch.device("cpu"))
    for cell in cells:
        flops = flops_per_image * sum(r["train_images"] * r["epochs"] for r in cell["runs"])
        cell["gflops"] = flops / cell["wall_s"] / 1e9
        cell["peak_share"] = cell["gflops"] / peak
        cell["train_peak_share"] = flops / cell["train_s"] / 1e9 / peak
    rows, goals = [], {}
    for n in ns:
        by = {c["mode"]: c for c in cells if c["n"] == n}
        fused_vs_packed = by["fused"]["wall_s"] / by["packed"]["wall_s"]
        if n in TARGET_NS:
            goals[n] = fused_vs_packed <= TARGET
        rows.append(
            {
                "n": n,
                **{f"{m}_s": by[m]["wall_s"] for m in MODES},
                "fused_vs_packed": fused_vs_packed,
                "fused_vs_sequential": by["fused"]["wall_s"] / by["sequential"]["wall_s"],
                **{f"{m}_share": f"{by[m]['peak_share']:.0%}/{by[m]['train_peak_share']:.0%}" for m in MODES},
                "target": ("met" if goals[n] else "missed") if n in goals else "",
            }
        )
    print(
        common.table(
            rows,
            [
                ("N", "n"),
                ("fused s", "fused_s"),
                ("packed s", "packed_s"),
                ("sequential s", "sequential_s"),
                ("fused/packed", "fused_vs_packed"),
                ("fused/sequential", "fused_vs_sequential"),
                ("fused share run/train", "fused_share"),
                ("packed share", "packed_share"),
                ("sequential share", "sequential_share"),
                (f"<= {TARGET}x packed", "target"),
            ],
        )
    )
    profile = None
    if goals and not all(goals.values()):
        k = max(n for n, met in goals.items() if not met)
        profile = {"members": k, "threads": cores, "top_ops": profile_group(cells[0]["config"], shape, k, cores)}
        print(f"target missed: one fused step of {k} members, top ops by self CPU time:")
        for op in profile["top_ops"]:
            print(f"  {op['self_cpu_share']:5.1%}  {op['op']} ({op['calls']} calls)")
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "data": args.data,
        "preset": args.preset,
        "sets": args.set,
        "cores": cores,
        "sgemm_gflops": peak,
        "step_mflop_per_image": flops_per_image / 1e6,
        "target": {"fused_vs_packed": TARGET, "ns": list(TARGET_NS), "met": goals},
        "gpu": "no GPU lent to this task: CPU figures only",
        "cells": cells,
        "table": rows,
        "profile": profile,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


def argparse_hidden() -> str:
    import argparse

    return argparse.SUPPRESS


if __name__ == "__main__":
    main()
