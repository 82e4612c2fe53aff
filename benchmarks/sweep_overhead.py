"""What Ray Tune costs per trial: the same fixed trials as bare train() calls and through `hamtune sweep`.

  bare                   hamtune.train.loop.train(config, data) for each trial, one after another,
                         in this process, with the thread count a sweep trial gets
  bare + checkpoints     the same, saving a checkpoint every epoch as the sweep's trainable does
  sweep, 1 at a time     hamtune.sweep.tune.runner.run_sweep over a grid space whose points are exactly
                         those trials, one trial at a time (max_concurrent 1): the overhead
  sweep, packed          the same sweep with as many 1-CPU trials at once as there are cores: what a
                         CPU sweep actually delivers in trials/hour

Ray's start-up is measured once, on its own. The GPU part (fractional packing: 1, 0.5, 0.25 and
0.125 GPU per trial; aggregate images/s and trials/hour) runs only where CUDA is available.

  python benchmarks/sweep_overhead.py
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.data.prepare import Prepared
from hamtune.results.store import load_results
from hamtune.sweep.space import parse_space
from hamtune.sweep.tune import runner
from hamtune.train.config import build_config
from hamtune.train.loop import Run, train

NAME = "sweep_overhead"
FIXED = {
    "kind": "ae",
    "arch": "mlp",
    "mlp_width": 128,
    "mlp_depth": 2,
    "latent_dim": 16,
    "norm": "none",
    "batch_size": 64,
    "image_size": 28,
    "device": "cpu",
    "seed": 0,
}
LRS = (1e-3, 2e-3, 3e-3, 5e-3, 7e-4, 1.5e-3, 2.5e-3, 4e-3)
GPU_FRACTIONS = (1.0, 0.5, 0.25, 0.125)
GPU_FIXED = {
    "kind": "ae",
    "arch": "cnn",
    "cnn_channels": 32,
    "cnn_blocks": 3,
    "latent_dim": 32,
    "batch_size": 128,
    "image_size": 64,
    "device": "cuda",
    "seed": 0,
}


def space_for(
    data: Prepared, lrs: tuple[float, ...], epochs: int, fixed: dict, cpus: float, gpus: float, max_concurrent: int | None, folder: Path
):
    """A grid space whose every point is one of the fixed trials: nothing is searched."""
    raw = {
        "name": "overhead",
        "data": str(data.path),
        "sampler": {"name": "grid", "seed": 0},
        "scheduler": "none",
        "num_samples": len(lrs),
        "max_epochs": epochs,
        "resources": {"cpus": cpus, "gpus": gpus},
        "fixed": fixed,
        "params": {"lr": {"choice": list(lrs)}},
        "max_failures": 0,
    }
    if max_concurrent:
        raw["max_concurrent"] = max_concurrent
    return parse_space(raw, folder / "overhead.yaml")


def bare(data: Prepared, lrs: tuple[float, ...], epochs: int, checkpoints: bool) -> float:
    """Every trial as a plain train() call (one thread, like a 1-CPU trial); returns the total seconds."""
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hamtune-bench-ckpt-") as folder:

        def save(metrics: dict, run: Run) -> None:
            run.save(Path(folder) / f"epoch-{run.epoch}")

        for lr in lrs:
            config = build_config({**FIXED, "lr": lr, "epochs": epochs, "num_threads": 1})
            result = train(config, data, on_epoch=save if checkpoints else None)
            assert result.status == "completed", result.reason
    return time.perf_counter() - started


def sweep(space, root: Path, label: str) -> tuple[float, Path]:
    """One sweep of the space into a fresh folder; Tune's and the recorder's lines are kept off the screen."""
    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        directory = runner.run_sweep(space, runner.SweepOptions(name=f"{label}-{time.time_ns()}", results_root=root))
    return time.perf_counter() - started, directory


def in_trial_seconds(directory: Path) -> float:
    """The seconds Tune counted inside the trials (training, reporting, checkpoints), summed."""
    return float(load_results(directory)[0]["wall_time_s"].sum())


def ray_startup(cpus: int) -> float | None:
    """Ray's start-up, or None when this process already runs Ray (as under the tests)."""
    import ray

    if ray.is_initialized():
        return None
    started = time.perf_counter()
    with runner.tune_settings():  # Ray starts as a sweep starts it (each run_sweep sets them again for itself)
        runner.start_ray(None, cpus)
    return time.perf_counter() - started


def gpu_packing(make_data: Callable[[], Prepared], epochs: int, trials: int, root: Path) -> dict:
    """Fractional GPUs per trial: aggregate training images/s and trials/hour at each packing."""
    import torch

    if not torch.cuda.is_available():
        return {
            "skipped": "no CUDA GPU on this machine: the fractional-packing part (1, 0.5, 0.25, 0.125 GPU "
            "per trial) needs one; no GPU figure is claimed"
        }
    data = make_data()
    lrs = tuple(1e-3 * (1 + i / trials) for i in range(trials))
    out = {"device": torch.cuda.get_device_name(0), "fixed": GPU_FIXED, "epochs": epochs, "trials": trials, "packing": []}
    for fraction in GPU_FRACTIONS:
        space = space_for(data, lrs, epochs, GPU_FIXED, 1, fraction, None, root)
        seconds, directory = sweep(space, root, f"gpu-{fraction:g}")
        epochs_table = load_results(directory)[1]
        images = float(epochs_table["train_images_per_s"].mul(epochs_table["epoch_time_s"]).sum())
        out["packing"].append(
            {
                "gpu_per_trial": fraction,
                "seconds": seconds,
                "trials_per_hour": trials / seconds * 3600,
                "aggregate_images_per_s": images / seconds,
            }
        )
    return out


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help=f"trials per set (default {len(LRS)}, quick 1)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial (default 5, quick 1)")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, quick 1)")
    parser.add_argument("--images", type=int, default=None, help="synthetic images at 28 px (default 1000, quick 120)")
    args = parser.parse_args(argv)
    lrs = LRS[: args.trials or (1 if args.quick else len(LRS))]
    epochs = args.epochs or (1 if args.quick else 5)
    repeats = args.repeats or (1 if args.quick else 3)
    cores = len(os.sched_getaffinity(0))
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    data = common.synthetic_prepared(args.images or (120 if args.quick else 1000), 28)
    startup = ray_startup(cores)
    root = Path(tempfile.mkdtemp(prefix="hamtune-sweep-bench-"))
    directories: dict[str, list[Path]] = {"sweep, 1 at a time": [], "sweep, packed": []}

    def swept(label: str, max_concurrent: int) -> float:
        space = space_for(data, lrs, epochs, FIXED, 1, 0, max_concurrent, root)
        seconds, directory = sweep(space, root, label.split(",")[-1].strip().replace(" ", "-"))
        directories[label].append(directory)
        return seconds

    bare(data, lrs[:1], 1, checkpoints=True)  # first-call costs (allocator, kernels) are nobody's overhead
    try:
        times = common.interleaved(
            {
                "bare": lambda: bare(data, lrs, epochs, checkpoints=False),
                "bare + checkpoints": lambda: bare(data, lrs, epochs, checkpoints=True),
                "sweep, 1 at a time": lambda: swept("sweep, 1 at a time", 1),
                "sweep, packed": lambda: swept("sweep, packed", cores),
            },
            repeats,
            warmup=0,
        )
        inside = [in_trial_seconds(d) for d in directories["sweep, 1 at a time"]]
        gpu = gpu_packing(lambda: common.synthetic_prepared(args.images or 600, 64), epochs, 16, root)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    k = len(lrs)
    medians = {name: common.median(t) for name, t in times.items()}
    per_trial = {name: m / k for name, m in medians.items()}
    overhead = [(s - b) / k for s, b in zip(times["sweep, 1 at a time"], times["bare"])]
    checkpoint = [(c - b) / k for c, b in zip(times["bare + checkpoints"], times["bare"])]
    between = [(s - i) / k for s, i in zip(times["sweep, 1 at a time"], inside)]
    rows = [
        {
            "method": name,
            "seconds": medians[name],
            "per_trial": per_trial[name],
            "trials_per_hour": 3600 / per_trial[name],
            "vs_bare": common.ratio(t, times["bare"])["median"],
        }
        for name, t in times.items()
    ]
    print(
        common.table(
            rows,
            [
                ("method", "method"),
                (f"seconds for {k} trials", "seconds"),
                ("s/trial", "per_trial"),
                ("trials/hour", "trials_per_hour"),
                ("time vs bare", "vs_bare"),
            ],
        )
    )
    summary = {
        "ray_startup_s": startup,
        "overhead_per_trial_s": common.median(overhead),
        "checkpointing_per_trial_s": common.median(checkpoint),
        "outside_trials_per_trial_s": common.median(between),
        "sweep_time_vs_bare": common.ratio(times["sweep, 1 at a time"], times["bare"]),
        "packed_speedup_vs_bare": common.ratio(times["bare"], times["sweep, packed"]),
    }
    startup_text = f"{startup:.1f} s once per sweep" if startup is not None else "not measured (Ray was already running)"
    print(
        f"Ray start-up: {startup_text}; overhead per trial {summary['overhead_per_trial_s']:.2f} s "
        f"(of which per-epoch checkpoints {summary['checkpointing_per_trial_s']:.2f} s, scheduling/recording between "
        f"trials {summary['outside_trials_per_trial_s']:.2f} s); a packed CPU sweep runs "
        f"{summary['packed_speedup_vs_bare']['median']:.2f}x the bare trials/hour"
    )
    print(
        gpu.get("skipped")
        or "GPU packing: "
        + ", ".join(
            f"{p['gpu_per_trial']:g} GPU/trial {p['trials_per_hour']:.0f} trials/h {p['aggregate_images_per_s']:.0f} img/s"
            for p in gpu["packing"]
        )
    )
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "trials": k,
        "epochs_per_trial": epochs,
        "repeats": repeats,
        "trial_config": FIXED,
        "lrs": list(lrs),
        "train_images": int(data.manifest["count"]),
        "cpus_per_trial": 1,
        "packed_concurrency": cores,
        "seconds": times,
        "table": rows,
        "summary": summary,
        "gpu": gpu,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
