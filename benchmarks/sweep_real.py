"""Trials per hour on real HAM10000 JPEGs: `hamtune sweep` vs the Ray Tune + Optuna script a user writes.

Both search the same CNN AE/VAE space at 64 px (kind, latent size, learning rate, width, VAE beta)
with Optuna's TPE through Ray Tune, 1 CPU per trial, the same trial budget and epochs per trial,
on the same lesion-grouped split (hamtune's, so both see the same images):

  plain    what a user writes: a torch Dataset over the unzipped JPEG folder (PIL decode and resize
           per item, every epoch), DataLoader(batch 64, shuffle), the model as built with torch's
           default AdamW, validation and test AUROC every epoch, no early stopping
  hamtune  `hamtune.run_sweep` on the same space: the prepared uint8 cache, ASHA, patience on
           validation, test only at the best validation epoch, channels_last

Each side runs in its own process (its own Ray), one after the other; each minute-long sweep runs
once, so this is one paired measurement, with the load recorded. Reported: wall time, trials per
hour, epochs trained, and the best validation AUROC each side had reached by the time the faster
side finished (from Tune's per-epoch results), with the test AUROC of that trial's delivered model.

  python benchmarks/sweep_real.py                      # 8 trials of up to 5 epochs each, cancer protocol
  python benchmarks/sweep_real.py --trials 12 --epochs 10
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import common

NAME = "sweep_real"
REAL = common.ROOT.parent / "shared" / "data" / "ham10000_real"
FIXED = dict(image_size=64, arch="cnn", batch_size=64, score="mse")
GOAL = 3.0


def space_params() -> dict:
    """The searched parameters, in hamtune's space syntax (the plain script declares the same by hand)."""
    return {
        "kind": {"choice": ["ae", "vae"]},
        "latent_dim": {"int": [16, 128], "log": True},
        "lr": {"float": [3.0e-4, 3.0e-3], "log": True},
        "cnn_channels": {"choice": [16, 32]},
        "beta": {"float": [0.001, 0.1], "log": True, "when": {"kind": "vae"}},
    }


def define_by_run(trial) -> None:
    """The same space as Optuna define-by-run code, as a user writes it for OptunaSearch."""
    kind = trial.suggest_categorical("kind", ["ae", "vae"])
    trial.suggest_int("latent_dim", 16, 128, log=True)
    trial.suggest_float("lr", 3.0e-4, 3.0e-3, log=True)
    trial.suggest_categorical("cnn_channels", [16, 32])
    if kind == "vae":
        trial.suggest_float("beta", 0.001, 0.1, log=True)


def run_hamtune(data: Path, trials: int, epochs: int, protocol: str, storage: Path) -> None:
    import hamtune

    space = {
        "name": "sweep-real-bench",
        "data": str(data),
        "protocol": protocol,
        "seed": 0,
        "objective": {"metric": "val_auroc", "mode": "max"},
        "sampler": {"name": "tpe", "n_startup_trials": 4},
        "scheduler": {"name": "asha", "grace_period": 1, "reduction_factor": 3},
        "num_samples": trials,
        "max_epochs": epochs,
        "resources": {"cpus": 1, "gpus": 0},
        "fixed": {**FIXED, "patience": 2},
        "params": space_params(),
    }
    hamtune.run_sweep(space, name="hamtune", results=storage)


def jpeg_files(data: Path, into: Path) -> dict[str, Path]:
    """image_id -> JPEG path: the release's zips unzipped once, as a user does before writing a Dataset."""
    for archive in sorted(data.glob("*.zip")):
        with zipfile.ZipFile(archive) as z:
            z.extractall(into)
    return {p.stem: p for root in (data, into) for p in root.rglob("*.jpg")}


def plain_trial(config: dict, files: dict, split: dict, epochs: int) -> None:
    """One trial of the plain script: Dataset over JPEGs, DataLoader, default AdamW, test every epoch."""
    import numpy as np
    import torch
    from PIL import Image
    from ray import tune
    from sklearn.metrics import roc_auc_score
    from torch.utils.data import DataLoader, Dataset

    from hamtune.models import build_model
    from hamtune.train.config import TrainConfig
    from hamtune.train.losses import per_image_terms, training_loss

    class Jpegs(Dataset):
        def __init__(self, ids):
            self.ids = ids

        def __len__(self):
            return len(self.ids)

        def __getitem__(self, i):
            image = Image.open(files[self.ids[i]]).convert("RGB").resize((64, 64))
            return torch.from_numpy(np.asarray(image)).permute(2, 0, 1).float() / 255.0

    settings = TrainConfig(**FIXED, **config)
    model = build_model(settings.model_spec(), (3, 64, 64))
    optimizer = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    train = DataLoader(Jpegs(split["train"]), batch_size=64, shuffle=True)

    def auroc(ids, labels) -> float:
        model.eval()
        errors = []
        with torch.no_grad():
            for x in DataLoader(Jpegs(ids), batch_size=64):
                errors.append(((model(x)[0] - x) ** 2).mean(dim=(1, 2, 3)))
        return float(roc_auc_score(labels, torch.cat(errors).numpy()))

    for epoch in range(epochs):
        model.train()
        for x in train:
            recon, mu, logvar = model(x)
            terms = per_image_terms(recon, x, mu, logvar, "mse")
            loss = training_loss(terms, model.variational, "mse", settings.beta, x[0].numel())
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        tune.report(
            {
                "epoch": epoch + 1,
                "val_auroc": auroc(split["val"], split["val_labels"]),
                "test_auroc": auroc(split["test"], split["test_labels"]),
            }
        )


def run_plain(data: Path, trials: int, epochs: int, protocol: str, storage: Path) -> None:
    import ray
    from ray import tune
    from ray.tune.search.optuna import OptunaSearch

    from hamtune.data.prepare import load_prepared, prepare
    from hamtune.train.config import TrainConfig
    from hamtune.train.data import plan_splits

    prepared = load_prepared(prepare(data, size=64, progress=False))
    plan = plan_splits(prepared, TrainConfig(**FIXED, protocol=protocol), None)
    ids = prepared.meta["image_id"].to_numpy(str)
    split = {
        "train": list(ids[plan.train]),
        "val": list(ids[plan.val]),
        "val_labels": plan.labels[plan.val].tolist(),
        "test": list(ids[plan.test]),
        "test_labels": plan.test_labels[plan.test].tolist(),
    }
    files = jpeg_files(data, storage / "jpegs")
    ray.init()
    search = OptunaSearch(space=define_by_run, metric="val_auroc", mode="max", seed=0)
    trainable = tune.with_resources(tune.with_parameters(plain_trial, files=files, split=split, epochs=epochs), {"cpu": 1})
    tuner = tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(num_samples=trials, search_alg=search),
        run_config=tune.RunConfig(name="plain", storage_path=str(storage)),
    )
    tuner.fit()


def events(folder: Path) -> list[dict]:
    """Every epoch report of a Tune experiment: when it arrived, its trial, and its metrics."""
    out = []
    for path in sorted(folder.glob("**/result.json")):
        for line in path.read_text().splitlines():
            result = json.loads(line)
            out.append(
                {
                    "trial": result["trial_id"],
                    "at": result["timestamp"],
                    "epoch": result.get("epoch"),
                    "val_auroc": result.get("val_auroc"),
                    "test_auroc": result.get("test_auroc"),
                    "status": result.get("status"),
                }
            )
    return out


def side(name: str, data: Path, trials: int, epochs: int, protocol: str, storage: Path) -> dict:
    """Run one side in its own process (its own Ray); its wall time, trials and epoch reports."""
    started = time.time()
    subprocess.run(
        [
            sys.executable,
            __file__,
            "--side",
            name,
            "--data",
            str(data),
            "--trials",
            str(trials),
            "--epochs",
            str(epochs),
            "--protocol",
            protocol,
            "--storage",
            str(storage),
        ],
        check=True,
    )
    wall = time.time() - started
    reports = events(storage / name)
    for report in reports:
        report["t"] = report["at"] - started
    by_trial = {r["trial"] for r in reports}
    return {
        "side": name,
        "wall_s": wall,
        "trials": len(by_trial),
        "epochs_trained": len(reports),
        "trials_per_hour": len(by_trial) * 3600 / wall,
        "reports": reports,
    }


def best_by(reports: list[dict], seconds: float) -> dict | None:
    """The best validation AUROC reported by `seconds` after the start, and that report's test AUROC."""
    seen = [r for r in reports if r["t"] <= seconds and r["val_auroc"] is not None]
    return max(seen, key=lambda r: r["val_auroc"], default=None)


def main(argv: list[str] | None = None) -> dict | None:
    parser = common.base_parser(__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=None, help="trials per side (default 8, quick 2)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs per trial at most (default 5, quick 1)")
    parser.add_argument("--protocol", default="cancer", choices=("cancer", "nevus"))
    parser.add_argument("--data", type=Path, default=None, help=f"release-layout folder (default {REAL}; quick: 160 synthetic images)")
    parser.add_argument("--side", choices=("hamtune", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    trials, epochs = args.trials or (2 if args.quick else 8), args.epochs or (1 if args.quick else 5)
    data = args.data or (common.synthetic_release(160, (160, 120)) if args.quick else REAL)
    if args.side:
        run = run_hamtune if args.side == "hamtune" else run_plain
        run(data, trials, epochs, args.protocol, args.storage)
        return None
    if not data.exists():
        raise SystemExit(f"{data}: not found; this benchmark needs the real HAM10000 images of ../shared")
    info, started = common.machine("cpu"), common.load()
    print(common.header(NAME, info, started), flush=True)
    with tempfile.TemporaryDirectory(prefix="hamtune-sweep-real-") as tmp:
        results = {name: side(name, data, trials, epochs, args.protocol, Path(tmp)) for name in ("hamtune", "plain")}
    fast = min(r["wall_s"] for r in results.values())
    for r in results.values():
        r["best_by_faster_wall"] = best_by(r["reports"], fast)
        r["best_overall"] = best_by(r["reports"], float("inf"))
    speedup = results["hamtune"]["trials_per_hour"] / results["plain"]["trials_per_hour"]
    rows = [
        {
            "side": name,
            "wall": r["wall_s"],
            "trials": r["trials"],
            "epochs": r["epochs_trained"],
            "tph": r["trials_per_hour"],
            "best_fast": (r["best_by_faster_wall"] or {}).get("val_auroc"),
            "best": (r["best_overall"] or {}).get("val_auroc"),
            "test": (r["best_overall"] or {}).get("test_auroc"),
        }
        for name, r in results.items()
    ]
    print(
        common.table(
            rows,
            [
                ("side", "side"),
                ("wall s", "wall"),
                ("trials", "trials"),
                ("epochs trained", "epochs"),
                ("trials/hour", "tph"),
                (f"best val AUROC by {fast:.0f} s", "best_fast"),
                ("best val AUROC", "best"),
                ("its test AUROC", "test"),
            ],
        )
    )
    print(f"hamtune: {speedup:.2f}x the plain script's trials/hour (goal >= {GOAL:g}x: {'met' if speedup >= GOAL else 'missed'})")
    payload = {
        "benchmark": NAME,
        "command": common.command(__file__, sys.argv[1:] if argv is None else argv),
        "quick": args.quick,
        "machine": info,
        "load_start": started,
        "load_end": common.load(),
        "data": str(data),
        "protocol": args.protocol,
        "trials": trials,
        "max_epochs": epochs,
        "fixed": FIXED,
        "space": space_params(),
        "speedup_trials_per_hour": speedup,
        "goal": {"ratio": GOAL, "met": speedup >= GOAL},
        "sides": results,
        "table": rows,
    }
    path = common.write(NAME, payload, args.out, args.quick)
    print(f"results: {path}")
    return payload


if __name__ == "__main__":
    main()
