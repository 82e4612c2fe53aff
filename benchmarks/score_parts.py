"""Which anomaly score separates real lesions? One CNN AE trained per protocol on real HAM10000; every score part
(mse, 1 - ssim, latent Mahalanobis), their sums standardised on the validation normals, flip TTA and PCA-64, measured
side by side at the epochs validation chooses (the best val AUROC of the MSE score, and of the SSIM score).

    python benchmarks/score_parts.py [augment] [epochs] [protocols]     # defaults: none 12 nevus,cancer

Needs ../shared/data/ham10000_real. The run quoted in the README: benchmarks/results/score_parts_real.txt (made by
an earlier, unformatted draft of this script that computed the same thing with the same seeds; 2026-11-30, the
2-core development machine under load, so its epoch times are not speed figures).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from hamtune.baselines.classical import pca, pixels
from hamtune.data.prepare import load_prepared, prepare
from hamtune.models import build_model
from hamtune.train import metrics
from hamtune.train.augment import augment
from hamtune.train.config import TrainConfig
from hamtune.train.data import plan_splits
from hamtune.train.evaluate import FLIPS, latent_gaussian
from hamtune.train.tensors import to_input

REAL = Path(__file__).resolve().parents[2] / "shared" / "data" / "ham10000_real"
SUMS = (("mse", "latent"), ("ssim", "latent"), ("mse", "ssim"), ("mse", "ssim", "latent"), ("ssim", "pca64"), ("ssim", "latent", "pca64"))


@torch.no_grad()
def parts(model, images: torch.Tensor, rows: np.ndarray, tta: bool) -> dict[str, np.ndarray]:
    """Per-image mse, 1 - ssim and code of some rows (means over the flips with tta)."""
    model.eval()
    out: dict[str, list[torch.Tensor]] = {"mse": [], "ssim": [], "z": []}
    views = FLIPS if tta else FLIPS[:1]
    for start in range(0, len(rows), 512):
        original = to_input(images[rows[start : start + 512]], "01")
        sums: dict[str, torch.Tensor] = {}
        for dims in views:
            x = original.flip(dims) if dims else original
            recon, mu, _ = model(x)
            view = {"mse": (recon - x).pow(2).flatten(1).mean(1), "ssim": 1 - metrics.ssim(recon, x), "z": mu}
            for key, value in view.items():
                sums[key] = sums.get(key, 0) + value / len(views)
        for key in out:
            out[key].append(sums[key])
    return {key: torch.cat(values).numpy().astype(np.float64) for key, values in out.items()}


def train_and_keep(config: TrainConfig, images: torch.Tensor, plan, mode: str, epochs: int, labels: np.ndarray) -> dict:
    """Train with plain MSE; keep the weights of the best val AUROC epoch of the mse and of the ssim score."""
    torch.manual_seed(0)
    model = build_model(config.model_spec(), tuple(images.shape[1:][::-1]))
    optimizer = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=True)
    rows, best = torch.as_tensor(plan.train), {}
    for epoch in range(1, epochs + 1):
        started, draws = time.time(), torch.Generator().manual_seed(epoch - 1)
        model.train()
        order = torch.randperm(len(rows), generator=draws)
        for start in range(0, len(order), config.batch_size):
            x = to_input(images[rows[order[start : start + config.batch_size]]], "01")
            if mode != "none":
                x = augment(x, mode, 0.0, "01", draws)
            loss = (model(x)[0] - x).pow(2).mean()
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        val = parts(model, images, plan.val, tta=False)
        found = {key: roc_auc_score(labels, val[key]) for key in ("mse", "ssim")}
        print(f"  ep {epoch} {time.time() - started:.0f}s val mse {found['mse']:.3f} ssim {found['ssim']:.3f}", flush=True)
        for key, value in found.items():
            if key not in best or value > best[key][0]:
                best[key] = (value, epoch, {n: t.clone() for n, t in model.state_dict().items()})
    return {"model": model, "best": best}


def main(mode: str = "none", epochs: int = 12, protocols: str = "nevus,cancer") -> None:
    torch.set_num_threads(2)
    data = load_prepared(prepare(REAL, size=64, progress=False))
    images = torch.from_numpy(np.array(data.images))
    for protocol in protocols.split(","):
        config = TrainConfig(protocol=protocol)
        plan = plan_splits(data, config)
        val_labels, test_labels = plan.labels[plan.val], plan.labels[plan.test]
        floor = pca(pixels(data.images[plan.train]), 64)
        pca_val, pca_test = floor(pixels(data.images[plan.val])).scores, floor(pixels(data.images[plan.test])).scores
        floor_val, floor_test = roc_auc_score(val_labels, pca_val), roc_auc_score(test_labels, pca_test)
        print(f"[{protocol} aug={mode}] PCA-64 val {floor_val:.3f} test {floor_test:.3f}", flush=True)
        trained = train_and_keep(config, images, plan, mode, epochs, val_labels)
        model = trained["model"]
        for chosen, (_, epoch, weights) in trained["best"].items():
            model.load_state_dict(weights)
            mean, precision = (t.numpy() for t in latent_gaussian(torch.as_tensor(parts(model, images, plan.train, False)["z"])))
            for tta in (False, True):
                split = {"val": parts(model, images, plan.val, tta), "test": parts(model, images, plan.test, tta)}
                scores = {
                    name: {
                        "mse": p["mse"],
                        "ssim": p["ssim"],
                        "latent": np.einsum("ij,jk,ik->i", p["z"] - mean, precision, p["z"] - mean),
                        "pca64": pca_val if name == "val" else pca_test,
                    }
                    for name, p in split.items()
                }
                normal = val_labels == 0
                for combo in SUMS:
                    for name in ("val", "test"):
                        scores[name]["+".join(combo)] = sum(
                            (scores[name][k] - scores["val"][k][normal].mean()) / scores["val"][k][normal].std() for k in combo
                        )
                print(f"  == epoch {epoch} (best val {chosen}) tta={tta}", flush=True)
                for key in scores["val"]:
                    print(
                        f"  {protocol} {key:20s} val {roc_auc_score(val_labels, scores['val'][key]):.3f} "
                        f"test {roc_auc_score(test_labels, scores['test'][key]):.3f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main(*(int(a) if a.isdigit() else a for a in sys.argv[1:]))
