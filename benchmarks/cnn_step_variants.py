"""One CNN training step of K models side by side: norm batch vs none, eager vs torch.compile, against the sgemm peak.

The CPU step of the `ham-best` CNN is a third memory-bound work around the convolutions (batch norm,
ReLU, layout reorders; README sections 1 and 8). Two ways to remove it are measured here, in one
run, interleaved with each other and with a float32 2048x2048 sgemm at the same thread count:

  norm=none   the same CNN without its batch norms (a searchable TrainConfig option already)
  compile     torch.compile (inductor, C++ kernels) of the K-model grouped model: one compilation
              serves all K members; the loss and fused AdamW step stay as training runs them

Each variant is one training step (forward, per-member loss, backward, fused AdamW) of the grouped
model of K = 1, 4, 8 seeds (hamtune.train.fused: K=1 is the plain model), channels_last, batch 64,
on real images of the given prepared cache. FLOPs are the K-model step's (torch.utils.flop_counter
on one model, times K). Compilation is timed apart (the first step, and a recompilation for the
shorter last batch of an epoch at the largest K), and a realistic fused run (K seeds, one epoch of
the preset's training images) is estimated from both. torch.profiler's top ops are recorded for the
default (norm batch, eager) at the smallest and largest K and for the fastest variant.

  python benchmarks/cnn_step_variants.py --data ~/.cache/hamtune/prepared/release-ham10000_real-64px-center-3ch-ac98bc6175
"""

from __future__ import annotations

import math
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common
from fused_seeds import make_group, top_ops
from train_throughput import SGEMM_N, sgemm, step_flops

from hamtune.train.config import TrainConfig, build_config
from hamtune.train.data import plan_splits
from hamtune.train.fused import group_input, group_step

NAME = "cnn_step_variants"
SHARE_GOAL = 0.6  # of the sgemm peak at batch 64, counting the K-model step's FLOPs (issue 25)
NORMS = ("batch", "none")
MODES = ("eager", "compile")


def variant_name(k: int, norm: str, mode: str) -> str:
    return f"K={k} norm={norm} {mode}"


def make_step(config: TrainConfig, images: torch.Tensor, k: int, compiled: bool, batches: int = 4) -> tuple[Callable, Callable]:
    """One grouped training step on real images (cycling over a few fixed batches), and a maker of a
    step on a shorter batch (an epoch's last one), as hamtune.train.fused trains a group."""
    _, h, w, c = images.shape
    group = make_group(config, (c, h, w), k)
    forward = torch.compile(group.model) if compiled else group.model
    generator = torch.Generator().manual_seed(0)

    def batch(size: int) -> torch.Tensor:
        rows = torch.randint(len(images), (k, size), generator=generator)
        return group_input(images, rows, config, [])

    xs = [batch(config.batch_size) for _ in range(batches)]
    turn = iter(range(1 << 62))

    def step_on(x: torch.Tensor) -> None:
        group_step(group, x, forward)

    def step() -> None:
        step_on(xs[next(turn) % batches])

    def short(size: int) -> Callable[[], None]:
        x = batch(size)
        return lambda: step_on(x)

    return step, short


def timed(step: Callable[[], None], steps: int) -> Callable[[], float]:
    def measure() -> float:
        began = time.perf_counter()
        for _ in range(steps):
            step()
        return (time.perf_counter() - began) / steps

    return measure


def first_call(step: Callable[[], None]) -> tuple[float | None, str | None]:
    """Seconds of a step's first call (compilation, when compiled), or the error's first line."""
    began = time.perf_counter()
    try:
        step()
    except Exception as exc:  # a compiler failure is a result to record, not to hide
        traceback.print_exc()
        return None, f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return time.perf_counter() - began, None


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="a prepared cache of the real images (quick: a synthetic 28 px one)")
    parser.add_argument("--preset", default="ham-best")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--ks", default=None, help="comma-separated models per group (default 1,4,8; quick 1,2)")
    parser.add_argument("--modes", default=None, help="comma-separated of eager,compile (default both; quick eager)")
    parser.add_argument("--steps", type=int, default=None, help="steps per timed round (default 3, quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved rounds (default 5, quick 1)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    from hamtune.train.single import load_data

    sets = {"image_size": 28, "cnn_channels": 8, "latent_dim": 16, "batch_size": 8} if args.quick else {}
    args.data = common.real_or_quick_data(args)
    ks = [int(v) for v in args.ks.split(",")] if args.ks else [1, 2] if args.quick else [1, 4, 8]
    modes = args.modes.split(",") if args.modes else ["eager"] if args.quick else list(MODES)
    steps, repeats = args.steps or (1 if args.quick else 3), args.repeats or (1 if args.quick else 5)
    base = build_config({"preset": args.preset, **sets})
    data, base = load_data(args.data, base, progress=False)
    images = torch.from_numpy(np.array(data.images))
    shape = (base.channels, base.image_size, base.image_size)
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    if "compile" in modes:
        import torch._inductor.config as inductor

        inductor.cpp.enable_kernel_profile = True  # generated kernels by name in the profile, not one opaque region
    configs = {norm: base.replace(norm=norm) for norm in NORMS}
    flops = {norm: step_flops(configs[norm], shape, torch.device("cpu")) * base.batch_size for norm in NORMS}
    variants, timers, shorts = [], {}, {}
    for k in ks:
        for norm in NORMS:
            for mode in modes:
                name = variant_name(k, norm, mode)
                step, short = make_step(configs[norm], images, k, mode == "compile")
                first_s, error = first_call(step)
                variants.append({"variant": name, "k": k, "norm": norm, "mode": mode, "first_step_s": first_s, "error": error})
                print(f"  {name}: first step {'failed: ' + error if error else f'{first_s:.1f} s'}", flush=True)
                if error is None:
                    timers[name], shorts[name] = timed(step, steps), short
    timers["sgemm"] = sgemm(torch.device("cpu"))
    load_timing_start = common.load()
    times = common.interleaved(timers, repeats, warmup=1)
    load_timing_end = common.load()
    sgemm_s = times.pop("sgemm")
    peak = 2 * SGEMM_N**3 / common.median(sgemm_s) / 1e9
    eager_first = {(v["k"], v["norm"]): v["first_step_s"] for v in variants if v["mode"] == "eager"}
    for v in variants:
        if v["variant"] not in times:
            continue
        per_step = common.median(times[v["variant"]])
        gflops = flops[v["norm"]] * v["k"] / per_step / 1e9
        v.update(
            ms_per_step=per_step * 1e3,
            ms_per_model_step=per_step * 1e3 / v["k"],
            gflops=gflops,
            peak_share=gflops / peak,
            share_goal_met=gflops / peak >= SHARE_GOAL,
            seconds_per_step=times[v["variant"]],
        )
        if v["mode"] == "compile" and eager_first.get((v["k"], v["norm"])) is not None:
            v["compile_s"] = v["first_step_s"] - eager_first[(v["k"], v["norm"])]
    timed_variants = [v for v in variants if "ms_per_step" in v]
    default = {k: variant_name(k, "batch", "eager") for k in ks}
    for v in timed_variants:
        ref = default[v["k"]]
        v["speedup_vs_default"] = common.ratio(times[ref], times[v["variant"]])["median"] if ref in times else None
    run = realistic_run(base, data, ks, modes, timed_variants, shorts)
    fastest = min(timed_variants, key=lambda v: v["ms_per_model_step"])
    profiles = {}
    for name in dict.fromkeys([default[ks[0]], default[ks[-1]], fastest["variant"]]):
        v = next(v for v in variants if v["variant"] == name)
        step, _ = make_step(configs[v["norm"]], images, v["k"], v["mode"] == "compile")
        profiles[name] = top_ops(step, steps=2 if args.quick else 3, top=12)
    rows = [{**v, "share": f"{v['peak_share']:.0%}"} for v in timed_variants]
    print(
        common.table(
            rows,
            [
                ("variant", "variant"),
                ("first step s", "first_step_s"),
                ("compile s", "compile_s"),
                ("ms/step", "ms_per_step"),
                ("ms/model-step", "ms_per_model_step"),
                ("GFLOP/s", "gflops"),
                ("of sgemm peak", "share"),
                ("x default", "speedup_vs_default"),
            ],
        )
    )
    print(f"sgemm {peak:.0f} GFLOP/s at {args.threads} threads; fastest per model-step: {fastest['variant']}")
    for name, ops in profiles.items():
        print(f"top ops, {name}:")
        for op in ops[:8]:
            print(f"  {op['self_cpu_share']:5.1%}  {op['op']} ({op['calls']} calls)")
    for e in run:
        print(
            f"realistic run, {e['k']} seeds, norm={e['norm']}, {e['steps']} steps: eager {e['eager_s']:.1f} s, "
            f"compiled {e['compiled_s']:.1f} s incl. compile {e['compile_s']:.1f} s + recompile {e['recompile_s']:.1f} s"
        )
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_timing_start": load_timing_start,
        "load_timing_end": load_timing_end,
        "load_end": common.load(),
        "data": args.data,
        "preset": args.preset,
        "config": base.to_dict(),
        "threads": args.threads,
        "batch": base.batch_size,
        "steps_per_round": steps,
        "repeats": repeats,
        "sgemm_gflops": peak,
        "sgemm_s": sgemm_s,
        "step_mflop_per_model": {norm: f / 1e6 for norm, f in flops.items()},
        "share_goal": SHARE_GOAL,
        "variants": variants,
        "fastest": fastest["variant"],
        "realistic_run": run,
        "profiles": profiles,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


def realistic_run(config: TrainConfig, data, ks: list[int], modes: list[str], variants: list[dict], shorts: dict) -> list[dict]:
    """The training seconds of one fused epoch of the largest K, eager vs compiled (compilation and the
    recompilation for the epoch's shorter last batch included), from the measured step times."""
    if "compile" not in modes:
        return []
    k, out = ks[-1], []
    n = len(plan_splits(data, config).train)
    full, last = divmod(n, config.batch_size)
    by = {v["variant"]: v for v in variants}
    for norm in NORMS:
        eager, compiled = by.get(variant_name(k, norm, "eager")), by.get(variant_name(k, norm, "compile"))
        if not eager or not compiled:
            continue
        recompile_s, error = first_call(shorts[compiled["variant"]](last)) if last >= 2 else (0.0, None)
        steps = full + (last >= 2)
        out.append(
            {
                "k": k,
                "norm": norm,
                "train_images": n,
                "steps": steps,
                "last_batch": last,
                "recompile_s": recompile_s,
                "error": error,
                "compile_s": compiled["compile_s"],
                "eager_s": steps * eager["ms_per_step"] / 1e3,
                "compiled_s": compiled["compile_s"] + (recompile_s or math.nan) + full * compiled["ms_per_step"] / 1e3,
            }
        )
    return out


if __name__ == "__main__":
    main()
