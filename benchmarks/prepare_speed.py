"""Decoding 600x450 JPEGs to 64 px arrays: the naive way vs `hamtune data prepare`, and a cached re-run.

  naive                 what a notebook does: for each metadata row, full decode (PIL), centre crop,
                        resize to 64x64, one process, np.stack at the end
  hamtune, 1 worker     hamtune.data.prepare.prepare(workers=1): JPEG draft mode (DCT-domain
                        downscaling) alone
  hamtune               prepare() as `hamtune data prepare` runs it: draft mode + worker processes,
                        plus what the command always does (metadata, fingerprint, Parquet, manifest)
  cached re-run         prepare() again on the unchanged source: a cache hit

The images are synthetic (hamtune.data.synth.synthesize_release) at the real release's 600x450.

  python benchmarks/prepare_speed.py               # full: 10,015 images, as many as HAM10000
"""

from __future__ import annotations

import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.data.images import default_workers
from hamtune.data.prepare import load_prepared, prepare

NAME = "prepare_speed"
SIZE = 64
GOAL = 4.0
FULL_N, QUICK_N = 10_015, 40
SOURCE_SIZE = (600, 450)


def naive_decode(path: Path, size: int) -> np.ndarray:
    """Full-resolution decode, centre crop, resize: the obvious PIL code."""
    image = Image.open(path).convert("RGB")
    width, height = image.size
    side = min(width, height)
    left, top = (width - side) // 2, (height - side) // 2
    return np.asarray(image.crop((left, top, left + side, top + side)).resize((size, size), Image.BILINEAR))


def naive_prepare(src: Path, size: int) -> tuple[np.ndarray, list[str]]:
    meta = pd.read_csv(src / "HAM10000_metadata.csv")
    paths = {p.stem: p for p in src.glob("HAM10000_images_part_*/*.jpg")}
    ids = meta["image_id"].tolist()
    return np.stack([naive_decode(paths[i], size) for i in ids]), ids


def _timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def warm_page_cache(src: Path) -> int:
    """Read every file once, untimed, so no alternative pays for the first read from disk."""
    return sum(len(p.read_bytes()) for p in src.glob("HAM10000_images_part_*/*.jpg"))


def profile_prepare(src: Path, out: Path, workers: int | None, naive_s: float) -> dict:
    """cProfile of one prepare() in the main process: time waiting on the decoding workers vs the serial rest."""
    import cProfile
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.runcall(prepare, src, size=SIZE, out=out, workers=workers, force=True, progress=False)
    total = time.perf_counter() - started
    stats = pstats.Stats(profiler).stats  # (file, line, name) -> (calls, primitive calls, tottime, cumtime, callers)
    cumulative: dict[str, float] = {}
    for (filename, _, function), (_, _, _, cumtime, _) in stats.items():
        if "hamtune" in filename or function in ("resolve", "__lt__"):
            key = f"{Path(filename).stem}.{function}"
            cumulative[key] = max(cumulative.get(key, 0.0), cumtime)
    decode = cumulative.get("prepare._decode_source", 0.0)
    top = dict(
        sorted(
            ((k, v) for k, v in cumulative.items() if v >= 0.02 * total and k not in ("prepare.prepare", "prepare._write")),
            key=lambda item: -item[1],
        )[:10]
    )
    return {
        "total_s": total,
        "decoding_s": decode,
        "serial_outside_decoding_s": total - decode,
        "ratio_if_only_decoding": naive_s / max(decode, 1e-9),
        "cumulative_s": top,
    }


def explain(ratio: float, profile: dict) -> str:
    inner = ("prepare._decode_source", "images.decode_many")
    parts = ", ".join(f"{k} {v:.2f} s" for k, v in profile["cumulative_s"].items() if k not in inner)
    return (
        f"hamtune data prepare is {ratio:.2f}x the naive loop. cProfile of one run: {profile['decoding_s']:.2f} s of "
        f"{profile['total_s']:.2f} s is decoding in the worker processes ({profile['ratio_if_only_decoding']:.2f}x the "
        f"naive loop by itself); {profile['serial_outside_decoding_s']:.2f} s is serial work in the main process "
        f"(cumulative: {parts})."
    )


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=None, help=f"synthetic JPEGs (default {FULL_N:,}; quick {QUICK_N})")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats (default 3, quick 1)")
    parser.add_argument(
        "--workers", type=int, default=None, help=f"hamtune's decoding processes (default: its own, {default_workers()} here)"
    )
    args = parser.parse_args(argv)
    n = args.images or (QUICK_N if args.quick else FULL_N)
    repeats = args.repeats or (1 if args.quick else 3)
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    synth_started = time.perf_counter()
    src = common.synthetic_release(n, SOURCE_SIZE)
    synth_s = time.perf_counter() - synth_started
    source_bytes = warm_page_cache(src)
    print(f"  {n} synthetic {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} JPEGs ({source_bytes / 1e6:.0f} MB) in {src}", flush=True)
    work = Path(tempfile.mkdtemp(prefix="hamtune-prepare-bench-"))
    try:
        fresh, cached_out = work / "fresh", work / "cached"
        prepare(src, size=SIZE, out=cached_out, workers=args.workers, progress=False)
        naive_output: list = []  # the last naive run's pixels, compared with hamtune's below

        def naive_run() -> None:
            naive_output[:] = [naive_prepare(src, SIZE)]

        alternatives = {
            "naive": lambda: _timed(naive_run),
            "hamtune, 1 worker": lambda: _timed(lambda: prepare(src, size=SIZE, out=fresh, workers=1, force=True, progress=False)),
            "hamtune": lambda: _timed(lambda: prepare(src, size=SIZE, out=fresh, workers=args.workers, force=True, progress=False)),
            "cached re-run": lambda: _timed(lambda: prepare(src, size=SIZE, out=cached_out, workers=args.workers, progress=False)),
        }
        times = common.interleaved(alternatives, repeats, warmup=0)
        hamtune_x = common.ratio(times["naive"], times["hamtune"])
        met = hamtune_x["median"] >= GOAL
        profile = None if met else profile_prepare(src, fresh, args.workers, common.median(times["naive"]))
        naive, ids = naive_output[0]
        ours = load_prepared(cached_out)
        order = pd.Series(np.arange(len(ours.meta)), index=ours.meta["image_id"]).loc[ids].to_numpy()
        difference = float(np.abs(naive.astype(np.int16) - np.asarray(ours.images)[order].astype(np.int16)).mean())
    finally:
        shutil.rmtree(work, ignore_errors=True)
    rows = []
    for name, t in times.items():
        seconds = common.median(t)
        rows.append({"method": name, "seconds": seconds, "images_per_s": n / seconds, "speedup": common.ratio(times["naive"], t)["median"]})
    print(
        common.table(rows, [("method", "method"), ("seconds (median)", "seconds"), ("images/s", "images_per_s"), ("x vs naive", "speedup")])
    )
    gap = explain(hamtune_x["median"], profile) if profile else None
    print(
        f"hamtune data prepare: {hamtune_x['median']:.2f}x the naive loop (goal >= {GOAL:g}x: {'met' if met else 'MISSED'}); "
        f"{n:,} images in {common.median(times['hamtune']):.1f} s; mean |naive - hamtune| = {difference:.2f} grey levels"
    )
    if gap:
        print("gap: " + gap)
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "images": n,
        "source_size": list(SOURCE_SIZE),
        "size": SIZE,
        "source_mb": source_bytes / 1e6,
        "workers": args.workers or default_workers(),
        "repeats": repeats,
        "synthesis_s": synth_s,
        "seconds": times,
        "table": rows,
        "ratios": {name: common.ratio(times["naive"], t) for name, t in times.items() if name != "naive"},
        "goal": {"ratio": GOAL, "met": met},
        "profile": profile,
        "gap": gap,
        "hamtune_prepare_s": common.median(times["hamtune"]),
        "mean_abs_difference_vs_naive": difference,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
