"""On a CUDA GPU, on the 5,984 real HAM10000 images at 64 px: epoch time of the CNN AE per precision,
memory layout and compilation, and trials per GPU-hour with 1, 4 and 8 trials packed on one GPU.

Made to run in under 8 minutes on a lent GPU machine that has torch but neither Ray nor the real
JPEGs: the prepared 64 px cache travels packed (`--pack`, here), and packed trials are separate
processes sharing the GPU, which is what Ray's fractional GPUs give each trial.

  python benchmarks/gpu_real.py --pack .gpu                 # here: pack the prepared real cache
  python benchmarks/gpu_real.py --data .gpu --out OUT      # there: measure, write OUT/gpu_real.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
import traceback
import zlib
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import common

NAME = "gpu_real"
PACKED = "images.delta.zlib"
MODEL = dict(kind="ae", arch="cnn", latent_dim=32, cnn_channels=32, cnn_blocks=3, score="mse", image_size=64)
VARIANTS = {  # name: (channels_last, precision, torch.compile mode or None)
    "fp32 NCHW": (False, "fp32", None),
    "fp32 channels_last": (True, "fp32", None),
    "bf16 channels_last": (True, "bf16", None),
    "bf16 channels_last + compile": (True, "bf16", "default"),
    "fp32 channels_last + CUDA graphs": (True, "fp32", "reduce-overhead"),
}
PACKS = (1, 4, 8)


def pack(prepared: Path, out: Path) -> None:
    """The prepared cache with its images delta-coded along rows and zlib-compressed (70 MB to 39 MB)."""
    out.mkdir(parents=True, exist_ok=True)
    images = np.load(prepared / "images.npy")
    delta = np.diff(images.astype(np.int16), axis=2, prepend=0).astype(np.uint8)
    (out / PACKED).write_bytes(zlib.compress(delta.tobytes(), 6))
    for name in ("manifest.json", "meta.parquet"):
        shutil.copy(prepared / name, out / name)
    print(f"packed {images.shape} from {prepared} into {out}: {(out / PACKED).stat().st_size / 2**20:.1f} MiB")


def unpack(packed: Path) -> Path:
    """Back to a prepared cache folder beside the packed one (images.npy), once."""
    folder = packed / "cache"
    if not (folder / "images.npy").exists():
        folder.mkdir(exist_ok=True)
        manifest = json.loads((packed / "manifest.json").read_text())
        delta = np.frombuffer(zlib.decompress((packed / PACKED).read_bytes()), np.uint8).reshape(manifest["shape"])
        images = np.cumsum(delta, axis=2, dtype=np.uint8)
        np.save(folder / "images.npy", images)
        for name in ("manifest.json", "meta.parquet"):
            shutil.copy(packed / name, folder / name)
    return folder


def load(packed: Path):
    from hamtune.data.prepare import load_prepared

    return load_prepared(unpack(packed), verify=True)


def epoch_times(data, batch: int, variant: str, device: str, limit: int | None = None, repeats: int = 3) -> dict:
    """A training epoch over all images (every class, no split): the first (warm-up, compilation) and the median of the rest."""
    import torch

    from hamtune.train import loop
    from hamtune.train.config import TrainConfig

    channels_last, precision, mode = VARIANTS[variant]
    config = TrainConfig(
        **MODEL, batch_size=batch, device=device, precision=precision, channels_last=channels_last, compile=mode is not None
    )
    run, _ = loop.build_run(config, data, None, torch.device(device))
    images = run.val.images
    rows = torch.arange(min(limit or len(images), len(images)), device=images.device)
    forward = torch.compile(run.model, mode=mode) if mode else run.model
    seconds = []
    for _ in range(1 + repeats):
        common.sync(device)
        started = time.perf_counter()
        loop._train_epoch(run, forward, images, rows, None, 0.0)
        common.sync(device)
        seconds.append(time.perf_counter() - started)
    median = statistics.median(seconds[1:])
    return {
        "variant": variant,
        "batch": batch,
        "images": len(rows),
        "first_epoch_s": seconds[0],
        "epoch_s": median,
        "images_per_s": len(rows) / median,
        "all_s": seconds,
    }


def one_trial(packed: Path, epochs: int, seed: int, device: str) -> dict:
    """One `hamtune train` run (cancer protocol, lesion split): what a sweep trial does, timed from inside."""
    from hamtune.train.config import TrainConfig
    from hamtune.train.loop import train

    started = time.perf_counter()
    data = load(packed)
    config = TrainConfig(**MODEL, epochs=epochs, seed=seed, device=device)
    result = train(config, data)
    history = result.history
    return {
        "seed": seed,
        "status": result.status,
        "wall_s": time.perf_counter() - started,
        "train_s": result.wall_time_s,
        "epoch_s": [h["epoch_time_s"] for h in history],
        "train_images_per_s": [h["train_images_per_s"] for h in history],
        "val_auroc": [h.get("val_auroc") for h in history],
        "test_auroc": result.final.get("test_auroc"),
    }


def packed_trials(packed: Path, n: int, epochs: int, device: str) -> dict:
    """n trial processes started at once on the one GPU; trials per GPU-hour from the wall time until the last ends."""
    started = time.perf_counter()
    procs = [
        subprocess.Popen(
            [sys.executable, __file__, "--trial", "--data", str(packed), "--epochs", str(epochs), "--seed", str(i), "--device", device],
            stdout=subprocess.PIPE,
            text=True,
        )
        for i in range(n)
    ]
    trials = [json.loads(p.communicate()[0].strip().splitlines()[-1]) for p in procs]
    wall = time.perf_counter() - started
    return {"packed": n, "epochs": epochs, "wall_s": wall, "trials_per_gpu_hour": n * 3600 / wall, "trials": trials}


def main(argv: list[str] | None = None) -> dict | None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pack", type=Path, help="write the packed real 64 px cache to this folder and stop")
    parser.add_argument(
        "--prepared", type=Path, help="the prepared cache to pack (default: hamtune's cache of ../shared/data/ham10000_real)"
    )
    parser.add_argument("--data", type=Path, help="the packed folder")
    parser.add_argument("--out", type=Path, default=common.RESULTS)
    parser.add_argument("--epochs", type=int, default=10, help="epochs per packed trial")
    parser.add_argument("--device", default="cuda", help="cuda; cpu only to check the script itself")
    parser.add_argument("--batches", default="64,256")
    parser.add_argument("--variants", default=",".join(VARIANTS), help="comma-separated names of VARIANTS to time")
    parser.add_argument("--packs", default=",".join(map(str, PACKS)))
    parser.add_argument("--limit", type=int, default=None, help="images per timed epoch (default all; a CPU check uses few)")
    parser.add_argument("--trial", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pack:
        from hamtune.data.prepare import prepare

        source = common.ROOT.parent / "shared" / "data" / "ham10000_real"
        pack(args.prepared or prepare(source, size=64, progress=False), args.pack)
        return None
    if args.trial:
        print(json.dumps(one_trial(args.data, args.epochs, args.seed, args.device)), flush=True)
        return None
    import torch

    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_real.py measures a CUDA GPU; this machine has none")
    info, started = common.machine(args.device), common.load()
    info["torch_cuda"] = torch.version.cuda
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "machine": info,
        "load_start": started,
        "epochs": [],
        "packing": [],
        "errors": [],
    }
    out = args.out
    out.mkdir(parents=True, exist_ok=True)

    def save() -> None:
        payload["load_end"] = common.load()
        (out / f"{NAME}.json").write_text(json.dumps(payload, indent=2) + "\n")

    print(f"{NAME}: {info['device_name']}, torch {info['torch']} (CUDA {info['torch_cuda']}), {os.cpu_count()} CPUs", flush=True)
    data = load(args.data)
    for batch in map(int, args.batches.split(",")):
        for variant in args.variants.split(","):
            try:
                cell = epoch_times(data, batch, variant, args.device, args.limit)
            except Exception as exc:  # a variant this torch or GPU cannot run is a finding, not the end of the run
                payload["errors"].append({"variant": variant, "batch": batch, "error": traceback.format_exception_only(exc)[-1].strip()})
                print(f"  {variant}, batch {batch}: FAILED {payload['errors'][-1]['error']}", flush=True)
                continue
            payload["epochs"].append(cell)
            print(
                f"  epoch on {cell['images']} images, batch {batch:3d}, {variant:30s}: {cell['epoch_s']:.3f} s "
                f"({cell['images_per_s']:.0f} img/s; first epoch {cell['first_epoch_s']:.1f} s)",
                flush=True,
            )
            save()
    for n in [int(v) for v in args.packs.split(",") if v]:
        cell = packed_trials(args.data, n, args.epochs, args.device)
        payload["packing"].append(cell)
        mean_epoch = statistics.mean(e for t in cell["trials"] for e in t["epoch_s"])
        print(
            f"  {n} trial(s) of {args.epochs} epochs packed on the GPU: {cell['wall_s']:.1f} s wall, "
            f"{cell['trials_per_gpu_hour']:.0f} trials/GPU-hour (mean epoch incl. validation {mean_epoch:.2f} s)",
            flush=True,
        )
        save()
    save()
    print(f"results: {out / (NAME + '.json')}")
    return payload


if __name__ == "__main__":
    main()
