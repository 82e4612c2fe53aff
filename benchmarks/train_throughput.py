"""Images/s of one training epoch: the loop a notebook would write vs hamtune's loop, measured alternately.

Same model (hamtune.models.build_model), same optimizer (hamtune.train.loop.make_optimizer), same
loss, same training images, same device. Only the way batches reach the model differs:

  notebook (pixel table)  a torch Dataset over the hmnist-style pixel table (one row of 3*H*W
                          columns per image, as the Kaggle CSV gives it), float conversion per
                          item on the CPU, DataLoader with default collate, .to(device) per batch
  notebook (array)        the same over a uint8 NHWC array: the fastest per-item Dataset there is
  hamtune                 hamtune.train.loop internals: uint8 images on the device once, a batch
                          is an index permutation gathered and converted to float on the device

At batch 32 a fourth loop is what a notebook really runs: the pixel-table loop with
torch.optim.AdamW(params, lr, weight_decay) as written, i.e. torch's per-tensor default rather
than hamtune's optimizer. Where hamtune misses the goal at batch 32, the loops are profiled
(torch.profiler, and each data path timed alone) to show where the epoch goes.

  python benchmarks/train_throughput.py            # full: 3 models x 28/64 px x batch 32/256
  python benchmarks/train_throughput.py --device cuda
"""

from __future__ import annotations

import contextlib
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
from hamtune.models.losses import per_image_terms, training_loss
from hamtune.train import loop
from hamtune.train.config import TrainConfig
from hamtune.train.tensors import to_input

NAME = "train_throughput"
MODELS = {
    "MLP-AE": dict(kind="ae", arch="mlp", mlp_width=512, mlp_depth=2, latent_dim=64, norm="none"),
    "CNN-AE": dict(kind="ae", arch="cnn", cnn_channels=32, cnn_blocks=3, latent_dim=32),
    "CNN-VAE": dict(kind="vae", arch="cnn", cnn_channels=32, cnn_blocks=3, latent_dim=32),
}
GOALS = {"cpu": 2.0, "cuda": 10.0}
GOAL_BATCH = 32
NOTEBOOKS = ("notebook (pixel table)", "notebook (array)")
AS_WRITTEN = "notebook (pixel table, default AdamW)"


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


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


class Notebook:
    """A notebook's training state: its own model and optimizer, fed by a DataLoader."""

    def __init__(self, config: TrainConfig, data: Prepared, rows: np.ndarray, dataset: type, device: torch.device,
                 default_adamw: bool = False):
        started = time.perf_counter()
        self.config, self.device = config, device
        _, h, w, c = data.images.shape
        torch.manual_seed(config.seed)
        self.model = build_model(config, (c, h, w)).to(device)
        if default_adamw:
            self.optimizer = torch.optim.AdamW(self.model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        else:
            self.optimizer = loop.make_optimizer(self.model, config, device)
        self.loader = DataLoader(dataset(data.images, rows), batch_size=config.batch_size, shuffle=True)
        self.pixels = h * w * c
        self.setup_s = time.perf_counter() - started

    def epoch(self, beta: float, regions: bool = False) -> float:
        """One epoch as a notebook writes it; returns its seconds. `regions` labels the phases for the profiler."""
        from torch.profiler import record_function

        label = record_function if regions else (lambda name: contextlib.nullcontext())
        config, model = self.config, self.model
        model.train()
        _sync(self.device)
        started = time.perf_counter()
        running = 0.0
        batches = iter(self.loader)
        while True:
            with label("notebook: Dataset + collate"):
                x = next(batches, None)
            if x is None:
                break
            with label("notebook: to device"):
                x = x.to(self.device)
            with label("notebook: forward + backward + step"):
                recon, mu, logvar = model(x)
                terms = per_image_terms(recon, x, mu, logvar, config.recon_loss)
                loss = training_loss(terms, model.variational, config.recon_loss, beta, self.pixels)
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                running += loss.item()
        _sync(self.device)
        return time.perf_counter() - started

    def data_only(self) -> float:
        """The epoch's data path alone: every batch fetched, converted and moved, no model."""
        _sync(self.device)
        started = time.perf_counter()
        for x in self.loader:
            x = x.to(self.device)
        _sync(self.device)
        return time.perf_counter() - started


class Hamtune:
    """hamtune's own training state, built by the loop's `_build` (data on the device once)."""

    def __init__(self, config: TrainConfig, data: Prepared, device: torch.device):
        started = time.perf_counter()
        self.run, plan = loop._build(config, data, None, device)
        self.images = self.run.val.images
        self.train_rows = torch.as_tensor(plan.train, device=device)
        self.rows = plan.train
        _sync(device)
        self.setup_s = time.perf_counter() - started

    def epoch(self, beta: float) -> float:
        run = self.run
        _sync(run.device)
        started = time.perf_counter()
        loop._train_epoch(run, run.model, self.images, self.train_rows, None, beta)
        _sync(run.device)
        return time.perf_counter() - started

    def data_only(self) -> float:
        """hamtune's data path alone: the epoch's index batches gathered and converted on the device."""
        config = self.run.config
        _sync(self.run.device)
        started = time.perf_counter()
        order = loop._epoch_order(config, len(self.train_rows), None, 0).to(self.images.device)
        for start in range(0, len(order), config.batch_size):
            to_input(self.images[self.train_rows[order[start : start + config.batch_size]]], config.input_range)
        _sync(self.run.device)
        return time.perf_counter() - started


def _top_ops(prof, n: int = 6) -> list[dict]:
    events = [e for e in prof.key_averages() if not e.key.startswith(("notebook:", "ProfilerStep"))]
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    top = sorted(events, key=lambda e: -e.self_cpu_time_total)[:n]
    return [{"op": e.key, "self_cpu_share": e.self_cpu_time_total / total, "calls": e.count} for e in top]


def profile_cell(notebooks: dict[str, Notebook], hamtune: Hamtune, beta: float, epoch_s: dict[str, float], repeats: int) -> dict:
    """Where the epochs go: each loop's data path timed alone (interleaved), and one epoch of the
    pixel-table notebook and of hamtune under torch.profiler (top ops by self CPU time)."""
    from torch.profiler import ProfilerActivity, profile

    alone = {name: nb.data_only for name, nb in notebooks.items()}
    alone["hamtune"] = hamtune.data_only
    data_s = {name: common.median(t) for name, t in common.interleaved(alone, repeats, warmup=0).items()}
    activities = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if hamtune.run.device.type == "cuda" else [])
    with profile(activities=activities) as prof:
        profiled_s = notebooks[NOTEBOOKS[0]].epoch(beta, regions=True)
    regions = {e.key: e.cpu_time_total / 1e6 for e in prof.key_averages() if e.key.startswith("notebook:")}
    notebook_ops = _top_ops(prof)
    with profile(activities=activities) as prof:
        hamtune.epoch(beta)
    out = {
        "data_path_alone_s": data_s,
        "epoch_s": epoch_s,
        "data_share": {name: data_s[name] / epoch_s[name] for name in data_s},
        "ratio_if_only_data_path_differed": {
            name: epoch_s[name] / max(epoch_s[name] - data_s[name] + data_s["hamtune"], 1e-9) for name in notebooks
        },
        "ratio_if_notebook_data_were_free": {name: epoch_s[name] / max(epoch_s[name] - data_s[name], 1e-9) for name in notebooks},
        "profiled_notebook": NOTEBOOKS[0],
        "notebook_profiled_epoch_s": profiled_s,
        "notebook_regions_s": regions,
        "notebook_top_ops": notebook_ops,
        "hamtune_top_ops": _top_ops(prof),
    }
    return out


def explain(cell: dict, notebook: str) -> str:
    p = cell["profile"]
    ops = ", ".join(f"{o['op']} {o['self_cpu_share']:.0%}" for o in p["hamtune_top_ops"][:4])
    return (
        f"{cell['model']} {cell['size']}px batch {cell['batch']} vs {notebook}: measured "
        f"{cell['ratios'][notebook]['median']:.2f}x. Its data path (Dataset + collate + to device) alone takes "
        f"{p['data_path_alone_s'][notebook]:.3g} s of its {p['epoch_s'][notebook]:.3g} s epoch "
        f"({p['data_share'][notebook]:.0%}); hamtune's gather + convert takes {p['data_path_alone_s']['hamtune']:.3g} s. "
        f"Loops that differ only there can differ by {p['ratio_if_only_data_path_differed'][notebook]:.2f}x "
        f"(at most {p['ratio_if_notebook_data_were_free'][notebook]:.2f}x with free data): the rest of the epoch is the "
        f"same model's forward/backward/optimizer step, identical in both (hamtune's top ops: {ops})."
    )


def measure_cell(model: str, size: int, batch: int, data: Prepared, device: torch.device, repeats: int) -> dict:
    config = TrainConfig(**MODELS[model], image_size=size, batch_size=batch, device=device.type, seed=0)
    beta = loop.kl_weight(config, 1)
    hamtune = Hamtune(config, data, device)
    notebooks = {
        NOTEBOOKS[0]: Notebook(config, data, hamtune.rows, PixelTable, device),
        NOTEBOOKS[1]: Notebook(config, data, hamtune.rows, ImageArray, device),
    }
    if batch == GOAL_BATCH:
        notebooks[AS_WRITTEN] = Notebook(config, data, hamtune.rows, PixelTable, device, default_adamw=True)
    alternatives = {name: (lambda nb=nb: nb.epoch(beta)) for name, nb in notebooks.items()}
    alternatives["hamtune"] = lambda: hamtune.epoch(beta)
    times = common.interleaved(alternatives, repeats, warmup=1)
    n = len(hamtune.rows)
    cell = {
        "model": model, "size": size, "batch": batch, "train_images": n, "repeats": repeats,
        "epoch_s": times,
        "images_per_s": {name: n / common.median(t) for name, t in times.items()},
        "ratios": {name: common.ratio(times[name], times["hamtune"]) for name in notebooks},
        "setup_s": {"hamtune (to device once)": hamtune.setup_s, **{k: nb.setup_s for k, nb in notebooks.items()}},
    }
    goal = GOALS.get(device.type)
    missed = [name for name in NOTEBOOKS if goal and batch == GOAL_BATCH and cell["ratios"][name]["median"] < goal]
    cell["goal"] = goal if batch == GOAL_BATCH else None
    cell["goal_met"] = {name: cell["ratios"][name]["median"] >= goal for name in NOTEBOOKS} if cell["goal"] else None
    if missed:
        medians = {name: common.median(t) for name, t in times.items()}
        same = {name: notebooks[name] for name in NOTEBOOKS}
        cell["profile"] = profile_cell(same, hamtune, beta, medians, repeats)
        cell["gap"] = {name: explain(cell, name) for name in missed}
    return cell


def main(argv: list[str] | None = None) -> dict:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats per cell (default 3, quick 1)")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own, all cores; quick: 1)")
    parser.add_argument("--images", type=int, default=None,
                        help="synthetic images per dataset (default 1000 at 28 px and 600 at 64 px; quick 120)")
    args = parser.parse_args(argv)
    if args.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: CUDA is not available on this machine")
    threads = args.threads or (1 if args.quick else None)
    if threads:
        torch.set_num_threads(threads)
    device = torch.device(args.device)
    repeats = args.repeats or (1 if args.quick else 3)
    models = ["MLP-AE"] if args.quick else list(MODELS)
    sizes, batches = ((28,), (32,)) if args.quick else ((28, 64), (32, 256))
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
                r = cell["ratios"]
                written = f", {r[AS_WRITTEN]['median']:.2f}x as written (default AdamW)" if AS_WRITTEN in r else ""
                print(f"  {model:8s} {size:3d}px batch {batch:4d}: hamtune {cell['images_per_s']['hamtune']:8.0f} img/s, "
                      f"{r[NOTEBOOKS[0]]['median']:.2f}x pixel-table notebook, {r[NOTEBOOKS[1]]['median']:.2f}x array notebook"
                      + written, flush=True)
    rows = [
        {"model": c["model"], "px": c["size"], "batch": c["batch"], "images": c["train_images"],
         "table": c["images_per_s"][NOTEBOOKS[0]], "array": c["images_per_s"][NOTEBOOKS[1]],
         "hamtune": c["images_per_s"]["hamtune"], "x_table": c["ratios"][NOTEBOOKS[0]]["median"],
         "x_array": c["ratios"][NOTEBOOKS[1]]["median"],
         "x_written": c["ratios"][AS_WRITTEN]["median"] if AS_WRITTEN in c["ratios"] else None,
         "goal": "" if not c["goal"] else ("met" if all(c["goal_met"].values()) else
                                           "met vs table only" if c["goal_met"][NOTEBOOKS[0]] else "missed")}
        for c in cells
    ]
    columns = [("model", "model"), ("px", "px"), ("batch", "batch"), ("train imgs", "images"),
               ("notebook table img/s", "table"), ("notebook array img/s", "array"), ("hamtune img/s", "hamtune"),
               ("x vs table", "x_table"), ("x vs array", "x_array"), (f"goal >={GOALS.get(device.type, 0):g}x @32", "goal"),
               ("x vs table + default AdamW", "x_written")]
    print(common.table(rows, columns))
    gaps = [text for c in cells for text in c.get("gap", {}).values()]
    for text in gaps:
        print("gap: " + text)
    payload = {
        "benchmark": NAME, "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick, "machine": info, "load_start": started, "load_end": common.load(),
        "goal": {"ratio": GOALS.get(device.type), "batch": GOAL_BATCH, "against": list(NOTEBOOKS)},
        "as_written": {"name": AS_WRITTEN, "batch": GOAL_BATCH,
                       "optimizer": "torch.optim.AdamW(params, lr, weight_decay): torch's default implementation"},
        "gpu": None if device.type == "cuda" else "no GPU on this machine: CPU figures only",
        "cells": cells, "table": rows, "gaps": gaps,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
