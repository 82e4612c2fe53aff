"""Images/s and GFLOP/s of one training epoch: a notebook's loop vs hamtune's, measured alternately.

Same model definition (hamtune.models.build_model), same loss, same training images, same device.

  notebook (pixel table)  what a notebook writes: a torch Dataset over the hmnist-style pixel table
                          (one row of 3*H*W columns per image, as the Kaggle CSV gives it), float
                          conversion per item, DataLoader with default collate, .to(device) per
                          batch, loss.item() per batch, torch's default AdamW and memory layout
  notebook (array)        the same over a uint8 NHWC array: the leanest per-item Dataset there is
  hamtune                 hamtune.train.loop (`build_run`, `_train_epoch`): uint8 images on the device
                          once, index batches converted on the device, fused AdamW, channels_last CNNs
  hamtune (NCHW)          hamtune with channels_last=False, to show what the layout alone gives (CNNs)

Each cell also counts the FLOPs of one training step (torch.utils.flop_counter.FlopCounterMode:
convolutions and matrix products, forward and backward) and times a 2048x2048 sgemm in the same
interleaved rounds, so every loop's GFLOP/s is reported as a share of this machine's matrix-product
peak at the same thread count. Where the share target is missed, one hamtune epoch is profiled.

  python benchmarks/train_throughput.py --threads 1      # full: 3 models x 28/64 px x batch 32/64/256
  python benchmarks/train_throughput.py --device cuda
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

from hamtune.data.prepare import Prepared
from hamtune.models import build_model
from hamtune.train import loop
from hamtune.train.config import TrainConfig
from hamtune.train.losses import per_image_terms, training_loss

NAME = "train_throughput"
MODELS = {
    "MLP-AE": dict(kind="ae", arch="mlp", mlp_width=512, mlp_depth=2, latent_dim=64, norm="none"),
    "CNN-AE": dict(kind="ae", arch="cnn", cnn_channels=32, cnn_blocks=3, latent_dim=32),
    "CNN-VAE": dict(kind="vae", arch="cnn", cnn_channels=32, cnn_blocks=3, latent_dim=32),
}
GOALS = {"cpu": 2.0, "cuda": 10.0}
GOAL_BATCH = 32
SHARE_GOAL = 0.6  # of the sgemm peak, CNN training step at 64 px, batch >= 64
NOTEBOOKS = ("notebook (pixel table)", "notebook (array)")
HAMTUNE, NCHW = "hamtune", "hamtune (NCHW)"
SGEMM_N = 2048


class PixelTable(Dataset):
    """What a notebook builds from hmnist_*_RGB.csv: a DataFrame row per image, converted per item."""

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.shape = images.shape[1:]
        flat = np.asarray(images[rows]).reshape(len(rows), -1)
        self.table = pd.DataFrame(flat, columns=[f"pixel{i:04d}" for i in range(flat.shape[1])])

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i: int) -> torch.Tensor:
        pixels = torch.tensor(self.table.iloc[i].to_numpy(), dtype=torch.float32) / 255.0
        return pixels.view(self.shape).permute(2, 0, 1)


class ImageArray(Dataset):
    """The leanest per-item Dataset: a uint8 NHWC array, one image converted to float per item."""

    def __init__(self, images: np.ndarray, rows: np.ndarray):
        self.images = np.ascontiguousarray(images[rows])

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, i: int) -> torch.Tensor:
        return torch.from_numpy(self.images[i]).permute(2, 0, 1).float() / 255.0


class Notebook:
    """A notebook's training state as written: the model as built, torch's default AdamW, a DataLoader."""

    def __init__(self, config: TrainConfig, data: Prepared, rows: np.ndarray, dataset: type, device: torch.device):
        self.config, self.device = config, device
        _, h, w, c = data.images.shape
        torch.manual_seed(config.seed)
        self.model = build_model(config.model_spec(), (c, h, w)).to(device)
        self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        self.loader = DataLoader(dataset(data.images, rows), batch_size=config.batch_size, shuffle=True)
        self.pixels = h * w * c

    def epoch(self, beta: float) -> float:
        config, model = self.config, self.model
        model.train()
        common.sync(self.device)
        started = time.perf_counter()
        running = 0.0
        for x in self.loader:
            x = x.to(self.device)
            recon, mu, logvar = model(x)
            terms = per_image_terms(recon, x, mu, logvar, config.recon_loss)
            loss = training_loss(terms, model.variational, config.recon_loss, beta, self.pixels)
            self.optimizer.zero_grad()
            loss.backward()
            self.optimizer.step()
            running += loss.item()
        common.sync(self.device)
        return time.perf_counter() - started


class Hamtune:
    """hamtune's own training state, built by the loop's `build_run` (data on the device once)."""

    def __init__(self, config: TrainConfig, data: Prepared, device: torch.device):
        self.run, plan = loop.build_run(config, data, None, device)
        self.images = self.run.val.images
        self.train_rows = torch.as_tensor(plan.train, device=device)
        self.rows = plan.train

    def epoch(self, beta: float) -> float:
        run = self.run
        common.sync(run.device)
        started = time.perf_counter()
        loop._train_epoch(run, run.model, self.images, self.train_rows, None, beta)
        common.sync(run.device)
        return time.perf_counter() - started


def step_flops(config: TrainConfig, shape: tuple[int, int, int], device: torch.device) -> float:
    """FLOPs per image of one training step (forward + backward) as FlopCounterMode counts them."""
    from torch.utils.flop_counter import FlopCounterMode

    model = build_model(config.model_spec(), shape).to(device)
    x = torch.rand(config.batch_size, *shape, device=device)
    with FlopCounterMode(display=False) as counter:
        recon, mu, logvar = model(x)
        terms = per_image_terms(recon, x, mu, logvar, config.recon_loss)
        training_loss(terms, model.variational, config.recon_loss, 1.0, x[0].numel()).backward()
    return counter.get_total_flops() / config.batch_size


def sgemm(device: torch.device, repeats: int = 3):
    """A timing callable for the float32 2048x2048 matrix product, the machine's FLOP ceiling here."""
    a, b = torch.randn(SGEMM_N, SGEMM_N, device=device), torch.randn(SGEMM_N, SGEMM_N, device=device)

    def measure() -> float:
        a @ b
        common.sync(device)
        started = time.perf_counter()
        for _ in range(repeats):
            a @ b
        common.sync(device)
        return (time.perf_counter() - started) / repeats

    return measure


def top_ops(hamtune: Hamtune, beta: float, n: int = 8) -> list[dict]:
    """Where a hamtune epoch's CPU time goes, by self time per op (torch.profiler)."""
    from torch.profiler import ProfilerActivity, profile

    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if hamtune.run.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        hamtune.epoch(beta)
    events = [e for e in prof.key_averages() if not e.key.startswith("ProfilerStep")]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:n]
    return [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in top]


def measure_cell(model: str, size: int, batch: int, data: Prepared, device: torch.device, repeats: int) -> dict:
    config = TrainConfig(**MODELS[model], image_size=size, batch_size=batch, device=device.type, seed=0)
    beta = loop.kl_weight(config, 1)
    hamtune = Hamtune(config, data, device)
    loops: dict = {HAMTUNE: hamtune.epoch}
    cnn = config.arch == "cnn"
    if cnn:
        loops[NCHW] = Hamtune(config.replace(channels_last=False), data, device).epoch
    if batch == GOAL_BATCH:
        for name, dataset in zip(NOTEBOOKS, (PixelTable, ImageArray)):
            loops[name] = Notebook(config, data, hamtune.rows, dataset, device).epoch
    alternatives = {name: (lambda epoch=epoch: epoch(beta)) for name, epoch in loops.items()}
    alternatives["sgemm"] = sgemm(device)
    times = common.interleaved(alternatives, repeats, warmup=1)
    sgemm_s = times.pop("sgemm")
    peak = 2 * SGEMM_N**3 / common.median(sgemm_s) / 1e9
    n = len(hamtune.rows)
    _, h, w, c = data.images.shape
    flops = step_flops(config, (c, h, w), device)
    images_per_s = {name: n / common.median(t) for name, t in times.items()}
    gflops = {name: flops * v / 1e9 for name, v in images_per_s.items()}
    cell = {
        "model": model,
        "size": size,
        "batch": batch,
        "train_images": n,
        "repeats": repeats,
        "epoch_s": times,
        "sgemm_s": sgemm_s,
        "sgemm_gflops": peak,
        "step_mflop_per_image": flops / 1e6,
        "images_per_s": images_per_s,
        "gflops": gflops,
        "peak_share": {name: g / peak for name, g in gflops.items()},
        "ratios": {name: common.ratio(times[name], times[HAMTUNE]) for name in times if name != HAMTUNE},
    }
    if batch == GOAL_BATCH:
        cell["goal"] = GOALS.get(device.type)
        cell["goal_met"] = {name: cell["ratios"][name]["median"] >= cell["goal"] for name in NOTEBOOKS} if cell["goal"] else None
    if cnn and size == 64 and batch >= 64 and device.type == "cpu":
        cell["share_goal"] = SHARE_GOAL
        cell["share_goal_met"] = cell["peak_share"][HAMTUNE] >= SHARE_GOAL
        if not cell["share_goal_met"]:
            cell["profile"] = top_ops(hamtune, beta)
    return cell


def row(cell: dict) -> dict:
    ratios, share = cell["ratios"], cell["peak_share"]
    goal = ""
    if cell.get("goal_met"):
        goal = "met" if all(cell["goal_met"].values()) else "met vs table only" if cell["goal_met"][NOTEBOOKS[0]] else "missed"
    if "share_goal_met" in cell:
        goal = f">=60% peak {'met' if cell['share_goal_met'] else 'missed'}"
    return {
        "model": cell["model"],
        "px": cell["size"],
        "batch": cell["batch"],
        "mflop": cell["step_mflop_per_image"],
        "hamtune": cell["images_per_s"][HAMTUNE],
        "gflops": cell["gflops"][HAMTUNE],
        "share": f"{share[HAMTUNE]:.0%}",
        "nchw_share": f"{share[NCHW]:.0%}" if NCHW in share else "",
        "x_nchw": ratios[NCHW]["median"] if NCHW in ratios else None,
        "x_table": ratios[NOTEBOOKS[0]]["median"] if NOTEBOOKS[0] in ratios else None,
        "x_array": ratios[NOTEBOOKS[1]]["median"] if NOTEBOOKS[1] in ratios else None,
        "peak": cell["sgemm_gflops"],
        "goal": goal,
    }


COLUMNS = [
    ("model", "model"),
    ("px", "px"),
    ("batch", "batch"),
    ("MFLOP/img", "mflop"),
    ("hamtune img/s", "hamtune"),
    ("GFLOP/s", "gflops"),
    ("of sgemm peak", "share"),
    ("NCHW share", "nchw_share"),
    ("x vs NCHW", "x_nchw"),
    ("x vs notebook table", "x_table"),
    ("x vs notebook array", "x_array"),
    ("sgemm GFLOP/s", "peak"),
    ("goal", "goal"),
]


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per cell (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own, all cores; quick: 1)")
    parser.add_argument("--models", default=None, help=f"comma-separated subset of {', '.join(MODELS)}")
    parser.add_argument("--sizes", default=None, help="comma-separated image sizes (default 28,64)")
    parser.add_argument("--batches", default=None, help="comma-separated batch sizes (default 32,64,256)")
    parser.add_argument(
        "--images", type=int, default=None, help="synthetic images per dataset (default 1000 at 28 px and 600 at 64 px; quick 120)"
    )
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 3)
    models = args.models.split(",") if args.models else ["MLP-AE", "CNN-AE"] if args.quick else list(MODELS)
    sizes = [int(v) for v in args.sizes.split(",")] if args.sizes else [28] if args.quick else [28, 64]
    batches = [int(v) for v in args.batches.split(",")] if args.batches else [32] if args.quick else [32, 64, 256]
    info, started = common.machine(args.device), common.load()
    print(common.header(NAME, info, started), flush=True)
    cells = []
    for size in sizes:
        n = args.images or (120 if args.quick else {28: 1000, 64: 600}[size])
        data = common.synthetic_prepared(n, size)
        for model in models:
            for batch in batches:
                cell = measure_cell(model, size, batch, data, device, repeats)
                cells.append(cell)
                r = row(cell)
                print(
                    f"  {model:8s} {size:3d}px batch {batch:4d}: hamtune {r['hamtune']:7.0f} img/s, {r['gflops']:5.1f} GFLOP/s "
                    f"= {r['share']} of sgemm {r['peak']:.0f}" + (f", {r['x_table']:.2f}x notebook (table)" if r["x_table"] else ""),
                    flush=True,
                )
    rows = [row(c) for c in cells]
    print(common.table(rows, COLUMNS))
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "goal": {
            "ratio": GOALS.get(device.type),
            "batch": GOAL_BATCH,
            "against": list(NOTEBOOKS),
            "peak_share": SHARE_GOAL,
            "peak_share_cells": "CNN, 64 px, batch >= 64",
        },
        "notebook": "DataLoader, default collate, torch.optim.AdamW(params, lr, weight_decay) as written, model as built (NCHW)",
        "gpu": None if device.type == "cuda" else "no GPU on this machine: CPU figures only",
        "cells": cells,
        "table": rows,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
