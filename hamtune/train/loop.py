"""Train one config on one prepared dataset: the engine every sweep trial and `hamtune train` runs.

The uint8 dataset goes to the device once; a batch is an index permutation gathered and
converted to float on the device: no DataLoader, no per-item collate.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from hamtune.data.prepare import Prepared
from hamtune.data.splits import get_protocol, rebalance_weights
from hamtune.errors import HamtuneError, first_line
from hamtune.models import Autoencoder, build_model
from hamtune.results.layout import DEFAULT_OBJECTIVE
from hamtune.results.store import best_epoch, delivered_epoch, is_better
from hamtune.train import checkpoint as ckpt
from hamtune.train.augment import augment, corrupt
from hamtune.train.config import TrainConfig
from hamtune.train.data import SplitPlan, plan_splits
from hamtune.train.evaluate import EvalSet, Evaluation, ScoreState, evaluate_test, evaluate_val
from hamtune.train.losses import per_image_terms, training_loss
from hamtune.train.tensors import to_input, to_uint8

log = logging.getLogger(__name__)

N_SAMPLES = 8


def sample_picks(labels: np.ndarray) -> np.ndarray:
    """Positions of the test images shown as samples: the first few normal, then the first few anomalous."""
    return np.concatenate([np.flatnonzero(labels == 0)[: N_SAMPLES // 2], np.flatnonzero(labels == 1)[: N_SAMPLES // 2]])


def resolve_device(name: str) -> torch.device:
    """cuda, else mps, else cpu; or exactly what the config asks for."""
    mps = getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()
    available = {"cuda": torch.cuda.is_available(), "mps": mps, "cpu": True}
    if name not in (*available, "auto"):
        raise HamtuneError(f"device={name!r}: unknown; choose one of auto, {', '.join(available)}")
    if name != "auto":
        if not available[name]:
            raise HamtuneError(f"device={name} requested but this torch build or machine has no {name.upper()}")
        return torch.device(name)
    return torch.device(next(d for d in ("cuda", "mps", "cpu") if available[d]))


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return device.type


def _to_device(images: np.ndarray, device: torch.device) -> torch.Tensor:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # read-only arrays from Ray's object store: we never write
        return torch.from_numpy(np.asarray(images)).to(device)


def free_memory(device: torch.device) -> int:
    """Bytes this run can still allocate on its device (MemAvailable on Linux CPUs)."""
    if device.type == "cuda":
        return torch.cuda.mem_get_info(device)[0]
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 1 << 62


def check_fits(config: TrainConfig, shape: tuple[int, int, int], device: torch.device) -> None:
    """Refuse a model whose weights, gradients and two AdamW moments cannot fit, before allocating
    them: an absurd width becomes a `failed` result at once instead of a machine swapping to death."""
    with torch.device("meta"):
        probe = build_model(config.model_spec(), shape)
    need = 4 * sum(p.numel() * p.element_size() for p in probe.parameters())
    available = free_memory(device)
    if need > available:
        raise MemoryError(
            f"the model needs {need / 2**30:.1f} GiB for weights, gradients and optimizer state; "
            f"{device.type} has {available / 2**30:.1f} GiB free"
        )


def is_out_of_memory(exc: BaseException) -> bool:
    text = str(exc).lower()
    return isinstance(exc, (MemoryError, torch.OutOfMemoryError)) or "out of memory" in text or "can't allocate memory" in text


Selection = tuple[str, str]  # (validation metric, "max" | "min"): which epoch a run delivers
DEFAULT_SELECTION: Selection = DEFAULT_OBJECTIVE


@dataclass
class Best:
    """The model a run delivers: its weights at the best validation epoch, the score fitted then, its
    test scores and samples. Exports, reproduction and the results row all describe this model."""

    epoch: int
    value: float
    weights: dict[str, torch.Tensor]
    state: ScoreState
    scores: pd.DataFrame | None
    samples: dict[str, np.ndarray]


@dataclass
class Run:
    """The live state of one training run; checkpoints and samples are taken from it."""

    config: TrainConfig
    model: Autoencoder
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler | None
    device: torch.device
    val: EvalSet
    test: EvalSet
    train_set: EvalSet | None = None
    epoch: int = 0
    history: list[dict] = field(default_factory=list)
    best: Best | None = None
    rng: torch.Tensor | None = None  # the global RNG state to checkpoint, when it is not this process's (a fused member's)

    @property
    def scores(self) -> pd.DataFrame | None:
        return self.best.scores if self.best else None

    def trainer_state(self) -> dict:
        rng = self.rng if self.rng is not None else torch.get_rng_state()
        state = {"optimizer": self.optimizer.state_dict(), "rng": rng, "epoch": self.epoch}
        if self.scheduler is not None:
            state["scheduler"] = self.scheduler.state_dict()
        return state

    @torch.no_grad()
    def samples(self) -> dict[str, np.ndarray]:
        """A few test originals, their reconstructions, and (VAE) draws from the prior, as uint8 images."""
        pick = sample_picks(self.test.labels)
        rows = torch.as_tensor(self.test.index[pick], device=self.test.images.device)
        was_training = self.model.training
        self.model.eval()
        x = to_input(self.test.images[rows], self.config.input_range)
        recon = self.model(x)[0]
        out = {
            "original": to_uint8(x, self.config.input_range).numpy(),
            "reconstruction": to_uint8(recon, self.config.input_range).numpy(),
            "image_id": self.test.image_id[pick].astype(str),
            "label": self.test.labels[pick].astype(np.int8),
            "dx": self.test.dx[pick].astype(str),
        }
        if self.model.variational:
            generator = torch.Generator().manual_seed(self.config.seed)
            out["prior"] = to_uint8(self.model.sample(N_SAMPLES, generator), self.config.input_range).numpy()
        self.model.train(was_training)
        return out

    def save(self, directory: Path) -> Path:
        best = self.best
        return ckpt.save_checkpoint(
            directory,
            self.model.state_dict(),
            self.trainer_state(),
            self.config.to_dict(),
            self.history,
            best.scores if best else None,
            best.samples if best else None,
            best.weights if best else None,
            best.state.to_dict() if best else None,
        )


@dataclass
class RunResult:
    """How a run ended, with everything the results layer writes."""

    status: str  # completed | diverged | failed
    reason: str
    config: TrainConfig
    history: list[dict]
    scores: pd.DataFrame | None
    samples: dict[str, np.ndarray]
    wall_time_s: float
    device: str
    n_params: int
    run: Run | None = None
    selection: Selection = DEFAULT_SELECTION

    @property
    def final(self) -> dict:
        """The delivered model's metrics: its best validation epoch's (the last epoch's when none is finite)."""
        return delivered_epoch(self.history, *self.selection)


OnEpoch = Callable[[dict, Run], None]


def _eval_sets(data: Prepared, test_data: Prepared | None, plan: SplitPlan, device: torch.device) -> tuple[EvalSet, EvalSet, EvalSet]:
    images = _to_device(data.images, device)
    meta = data.meta

    def split(name: str, rows: np.ndarray) -> EvalSet:
        return EvalSet(name, images, rows, plan.labels[rows], meta["dx"].to_numpy(str)[rows], meta["image_id"].to_numpy(str)[rows])

    train, val = split("train", plan.train), split("val", plan.val)
    if test_data is None:
        test_images, test_meta = images, meta
    else:
        test_images, test_meta = _to_device(test_data.images, device), test_data.meta
    test = EvalSet(
        "test",
        test_images,
        plan.test,
        plan.test_labels[plan.test],
        test_meta["dx"].to_numpy(str)[plan.test],
        test_meta["image_id"].to_numpy(str)[plan.test],
    )
    return train, val, test


def build_run(config: TrainConfig, data: Prepared, test_data: Prepared | None, device: torch.device) -> tuple[Run, SplitPlan]:
    """A fresh run of `config` (model, optimiser, evaluation sets on `device`) and the split it trains on."""
    plan = plan_splits(data, config, test_data)
    train, val, test = _eval_sets(data, test_data, plan, device)
    _, h, w, c = data.images.shape
    check_fits(config, (c, h, w), device)
    torch.manual_seed(config.seed)
    model = build_model(config.model_spec(), (c, h, w)).to(device, memory_format=memory_format(config))  # type: ignore[call-overload]  # Module.to takes memory_format (torch docs); its overloads omit it
    optimizer = make_optimizer(model, config, device)
    scheduler = None
    if config.lr_schedule == "cosine":
        scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return Run(config, model, optimizer, scheduler, device, val, test, train), plan


def memory_format(config: TrainConfig) -> torch.memory_format:
    """channels_last for CNNs: oneDNN's and cuDNN's fast convolution layout (1.45x a CPU training step
    at 64 px, benchmarks/step_options.py). Batches arrive channels_last already (`to_input` permutes NHWC uint8), so
    only the weights change layout; the numbers are the same up to float summation order."""
    return torch.channels_last if config.arch == "cnn" and config.channels_last else torch.contiguous_format


def make_optimizer(model: Autoencoder, config: TrainConfig, device: torch.device) -> torch.optim.Optimizer:
    """AdamW, fused where torch has a fused kernel (2-3x faster steps than the per-tensor default on CPU)."""
    fused = device.type in ("cpu", "cuda")
    return torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay, fused=fused)


def restore(run: Run, directory: Path, selection: Selection) -> None:
    """Put a run back as its checkpoint folder left it: weights, optimiser, scheduler, RNG, history, delivered model."""
    directory = Path(directory)
    run.model.load_state_dict(ckpt.load_weights(directory / ckpt.WEIGHTS, run.device))
    state = ckpt.load_weights(directory / ckpt.TRAINER, "cpu")
    run.optimizer.load_state_dict(state["optimizer"])
    if run.scheduler is not None and "scheduler" in state:
        run.scheduler.load_state_dict(state["scheduler"])
    torch.set_rng_state(state["rng"])
    run.epoch = int(state["epoch"])
    run.history, scores = ckpt.load_history(directory)
    best = best_epoch(run.history, *selection)
    if best and (directory / ckpt.BEST).exists():
        run.best = Best(
            int(best["epoch"]),
            float(best[selection[0]]),
            ckpt.load_weights(directory / ckpt.BEST, "cpu"),
            ScoreState.from_dict(ckpt.load_score_state(directory)),
            scores,
            ckpt.load_samples(directory),
        )


def epoch_order(config: TrainConfig, n: int, weights: torch.Tensor | None, epoch: int) -> torch.Tensor:
    """This epoch's sample order, from a generator seeded by (seed, epoch): identical after a resume."""
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    if weights is None:
        return torch.randperm(n, generator=generator)
    return torch.multinomial(weights, n, replacement=True, generator=generator)


def augment_draws(config: TrainConfig, epoch: int) -> torch.Generator:
    """This epoch's augmentation draws, seeded by (seed, epoch) apart from the sample order: identical after a resume."""
    return torch.Generator().manual_seed(config.seed * 100_003 + epoch + (1 << 40))


def _train_epoch(
    run: Run, forward: Callable, images: torch.Tensor, train_rows: torch.Tensor, weights: torch.Tensor | None, beta: float
) -> float:
    config, model = run.config, run.model
    order = epoch_order(config, len(train_rows), weights, run.epoch).to(images.device)
    augmenting = config.augment != "none" or config.color_jitter > 0
    draws = augment_draws(config, run.epoch)
    pixels = math.prod(images.shape[1:])
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16)
        if config.precision == "bf16" and run.device.type == "cuda"
        else contextlib.nullcontext()
    )
    model.train()
    total = torch.zeros((), device=images.device)
    batches = 0
    for start in range(0, len(order), config.batch_size):
        rows = train_rows[order[start : start + config.batch_size]]
        if len(rows) < 2:
            continue
        x = to_input(images[rows], config.input_range)
        if augmenting:
            x = augment(x, config.augment, config.color_jitter, config.input_range, draws)
        seen = x if config.noise == "none" else corrupt(x, config.noise, config.noise_level, config.input_range, draws)
        with autocast:
            recon, mu, logvar = forward(seen)
        terms = per_image_terms(recon, x, mu, logvar, config.recon_loss, config.input_range)
        loss = training_loss(terms, model.variational, config.recon_loss, beta, pixels)
        run.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        run.optimizer.step()
        total += loss.detach()
        batches += 1
    if run.scheduler is not None:
        run.scheduler.step()
    return float(total / max(batches, 1))


def kl_weight(config: TrainConfig, epoch: int) -> float:
    """beta, ramped linearly over the first kl_warmup epochs."""
    if config.kind != "vae":
        return 0.0
    if config.kl_warmup <= 0:
        return config.beta
    return config.beta * min(1.0, epoch / config.kl_warmup)


def out_of_patience(run: Run) -> bool:
    """Whether `patience` epochs have passed since validation last improved: the later ones would decide nothing."""
    patience = run.config.patience
    return bool(patience) and run.best is not None and run.epoch - run.best.epoch >= patience


def _keep_as_best(run: Run, evaluation: Evaluation, value: float) -> None:
    """Make the model as it is now (the epoch about to be counted) the one the run delivers."""
    weights = {k: v.detach().to("cpu", copy=True) for k, v in run.model.state_dict().items()}
    run.best = Best(run.epoch + 1, value, weights, evaluation.state, evaluation.scores, run.samples())


def close_epoch(
    run: Run,
    protocol,
    selection: Selection,
    train_loss: float,
    beta: float,
    epoch_started: float,
    train_seconds: float,
    n_train: int,
) -> str:
    """After an epoch's training: evaluate validation (and test when it improved), keep the best model,
    and append the epoch's metrics to the run's history. Returns why the run diverged, or ''."""
    config = run.config
    if not math.isfinite(train_loss):
        return f"training loss became {train_loss} in epoch {run.epoch + 1}"
    evaluation = evaluate_val(run.model, run.val, config, beta, run.train_set)
    if not all(math.isfinite(evaluation.metrics[k]) for k in ("val_mse", "val_loss")):
        return f"reconstructions became non-finite in epoch {run.epoch + 1}"
    value = evaluation.metrics.get(selection[0])
    improved = is_better(value, run.best.value if run.best else None, selection[1])
    if improved or config.test_every_epoch:
        evaluation = evaluate_test(run.model, run.test, config, protocol, evaluation)
    if improved:
        assert value is not None  # is_better is False for a missing value
        _keep_as_best(run, evaluation, float(value))
    metrics: dict = evaluation.metrics  # a history row: metrics plus the epoch's status text
    run.epoch += 1
    last = run.epoch == config.epochs or out_of_patience(run)
    metrics.update(
        epoch=run.epoch,
        train_loss=train_loss,
        lr=run.optimizer.param_groups[0]["lr"],
        epoch_time_s=time.perf_counter() - epoch_started,
        train_images_per_s=n_train / max(train_seconds, 1e-9),
        status="completed" if last else "running",
    )
    run.history.append(metrics)
    return ""


def too_few_images(n_train: int, config: TrainConfig) -> str:
    """Why a run cannot train (a batch of one is skipped for its batch statistics, so no step would run), or ''."""
    if n_train >= 2:
        return ""
    return (
        f"{n_train} normal training image(s) (max_train_images={config.max_train_images}): "
        "an optimiser step needs at least 2, so nothing would be trained"
    )


def finish(
    run: Run | None, status: str, reason: str, started: float, device: torch.device, selection: Selection, config: TrainConfig
) -> RunResult:
    """The result of a run that has stopped (`run` None when it failed before its model was built): the best epoch's
    weights loaded into its model."""
    if status == "completed" and run is not None and run.epoch < config.epochs:
        assert run.best is not None  # a completed run stops early only by patience, which needs a best epoch
        reason = (
            f"stopped after epoch {run.epoch} of {config.epochs}: validation last improved at epoch "
            f"{run.best.epoch} (patience {config.patience})"
        )
    n_params = sum(p.numel() for p in run.model.parameters()) if run else 0
    if run is not None and run.best is not None:
        run.model.load_state_dict(run.best.weights)
    samples = run.best.samples if run is not None and run.best is not None and status == "completed" else {}
    return RunResult(
        status,
        reason,
        config,
        run.history if run else [],
        run.scores if run else None,
        samples,
        time.perf_counter() - started,
        device_name(device),
        n_params,
        run,
        selection,
    )


def train(
    config: TrainConfig,
    data: Prepared,
    on_epoch: OnEpoch | None = None,
    test_data: Prepared | None = None,
    resume_from: Path | None = None,
    selection: Selection = DEFAULT_SELECTION,
) -> RunResult:
    """Train, evaluating validation after every epoch, and deliver the model of the best validation
    epoch (by `selection`); test is evaluated only for that model (each time validation improves,
    so a run stopped early still has it), or every epoch with `test_every_epoch`. Calls
    `on_epoch(metrics, run)` after each epoch.

    With `patience`, the run ends once validation has not improved for that many epochs.
    A NaN/inf loss or metric ends the run as `diverged` with the last good metrics; running out of
    memory ends it as `failed`; both are results, not exceptions.
    """
    started = time.perf_counter()
    if config.num_threads:
        torch.set_num_threads(config.num_threads)
    device = resolve_device(config.device)
    protocol = get_protocol(config.protocol)
    status, reason, run = "completed", "", None
    try:
        run, plan = build_run(config, data, test_data, device)
        if resume_from is not None:
            restore(run, resume_from, selection)
        model_step = torch.compile(run.model) if config.compile and device.type == "cuda" else run.model
        train_rows = torch.as_tensor(plan.train, device=device)
        weights = train_weights(config, data, plan)
        images = run.val.images
        reason = too_few_images(len(train_rows), config)
        status = "failed" if reason else status
        while status == "completed" and run.epoch < config.epochs and not out_of_patience(run):
            epoch_started = time.perf_counter()
            beta = kl_weight(config, run.epoch + 1)
            train_loss = _train_epoch(run, model_step, images, train_rows, weights, beta)
            train_seconds = time.perf_counter() - epoch_started
            reason = close_epoch(run, protocol, selection, train_loss, beta, epoch_started, train_seconds, len(train_rows))
            if reason:
                status = "diverged"
                break
            if on_epoch is not None:
                on_epoch(run.history[-1], run)
    except Exception as exc:  # only memory exhaustion is an expected outcome; the rest propagates
        if not is_out_of_memory(exc):
            raise
        status, reason = "failed", f"out of memory: {first_line(exc, 300)}"
        log.warning("run failed: %s", reason)
    return finish(run, status, reason, started, device, selection, config)


def train_weights(config: TrainConfig, data: Prepared, plan: SplitPlan) -> torch.Tensor | None:
    """Sampling weights of the training images (rebalance=weighted), or None for a plain permutation."""
    if config.rebalance != "weighted":
        return None
    return torch.as_tensor(rebalance_weights(data.meta["dx"].to_numpy(str)[plan.train]), dtype=torch.float64)
