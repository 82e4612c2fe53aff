"""`hamtune train`: one config on one dataset, with a progress bar, written in the sweep's results layout."""

from __future__ import annotations

import logging
import time
import uuid
from pathlib import Path

from tqdm import tqdm

from hamtune.data.prepare import Prepared, resolve_data
from hamtune.errors import UsageError
from hamtune.files import atomic_folder
from hamtune.paths import relative_to_results
from hamtune.results.layout import DEFAULT_OBJECTIVE
from hamtune.results.store import ResultsWriter, trial_row
from hamtune.train.config import FUSE, MAX_SEEDS, RANGES, TrainConfig
from hamtune.train.fused import train_group, why_not_fused
from hamtune.train.loop import Run, RunResult, resolve_device, train

log = logging.getLogger(__name__)

OBJECTIVE = DEFAULT_OBJECTIVE  # the epoch `hamtune train` delivers, as a sweep's default objective chooses it
SUMMARY = (
    "test_auroc",
    "test_auprc",
    "test_f1",
    "test_precision",
    "test_recall",
    "threshold",
    "test_mse",
    "test_psnr",
    "test_ssim",
    "test_elbo",
    "val_auroc",
    "val_ssim",
)


def load_data(spec: str, config: TrainConfig, progress: bool = True, **kwargs) -> tuple[Prepared, TrainConfig]:
    """Resolve the data the config asks for; a ready cache's own preprocessing wins over the config's."""
    data = resolve_data(spec, size=config.image_size, crop=config.crop, channels=config.channels, progress=progress, **kwargs)
    return data, config.at_preprocessing(data.manifest)


def run_and_record(
    config: TrainConfig,
    data: Prepared,
    results_dir: Path,
    name: str,
    test_data: Prepared | None = None,
    progress: bool = True,
    config_id: str | None = None,
) -> tuple[RunResult, dict]:
    """Train with a per-epoch progress bar, checkpoint the final model, and append the run to results (as a seed of
    the configuration `config_id`, where it is one)."""
    bar = tqdm(total=config.epochs, desc=f"training {config.kind}/{config.arch}", unit="epoch", disable=None if progress else True)

    def on_epoch(metrics: dict, run: Run) -> None:
        bar.update(1)
        bar.set_postfix(loss=f"{metrics['train_loss']:.4g}", val_auroc=f"{metrics['val_auroc']:.3f}", refresh=False)

    with bar:
        result = train(config, data, on_epoch=on_epoch, test_data=test_data, selection=OBJECTIVE)
    return result, record(result, data, results_dir, name, test_data, config_id)


def check_seeds(config: TrainConfig, seeds: int, keep: int | None = None) -> None:
    """Seeds seed..seed+N-1 are at most MAX_SEEDS whole trainings (1,000,000 is a typo that would run for days) and
    stay valid seeds, and an ensemble keeps 2 to N of them; checked before any data is read."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or not 1 <= seeds <= MAX_SEEDS:
        raise UsageError(f"--seeds must be a whole number between 1 and {MAX_SEEDS} (each seed trains a whole model), got {seeds!r}")
    if config.seed + seeds - 1 > RANGES["seed"][1]:
        raise UsageError(f"--seeds {seeds} from seed {config.seed} passes the largest seed, {RANGES['seed'][1]}")
    if keep is not None and (isinstance(keep, bool) or not isinstance(keep, int) or not 2 <= keep <= seeds):
        raise UsageError(f"--keep must be a whole number between 2 and --seeds ({seeds}): the seeds an ensemble keeps, got {keep!r}")


def run_seeds_and_record(
    config: TrainConfig,
    seeds: int,
    data: Prepared,
    results_dir: Path,
    name: str,
    test_data: Prepared | None = None,
    progress: bool = True,
    fuse: str = "auto",
) -> list[tuple[RunResult, dict]]:
    """Train `config` on seeds seed, seed+1, ... seed+seeds-1 and record each run as a lone run records
    it: as one grouped model in one process (hamtune.train.fused) where the config allows and `fuse` asks
    for it, else one after another. `fuse='auto'` fuses on CUDA only: on CPU one seed after another measured
    faster (benchmarks/fused_seeds.py, 8 seeds of ham-best: fused 1.40x the sequential time)."""
    check_seeds(config, seeds)
    if fuse not in FUSE:
        raise UsageError(f"--fuse must be one of {', '.join(FUSE)}, got {fuse!r}")
    configs = [config.replace(seed=config.seed + i) for i in range(seeds)]
    group = f"{name}-{uuid.uuid4().hex[:8]}" if seeds > 1 else None  # the seeds' configuration: chosen on their mean
    why = why_not_fused(fuse, configs, resolve_device(config.device).type == "cuda")
    if why:
        if seeds > 1:
            (log.warning if fuse == "on" else log.debug)("training %d seeds one after another, not fused: %s", seeds, why)
        done = []
        for i, c in enumerate(configs):
            if seeds > 1:
                log.info("seed %d (%d of %d)", c.seed, i + 1, seeds)
            done.append(run_and_record(c, data, results_dir, name, test_data, progress, group))
        return done
    bar = tqdm(total=config.epochs * seeds, desc=f"training {seeds} seeds fused", unit="epoch", disable=None if progress else True)
    with bar:
        results = train_group(configs, data, on_epoch=lambda metrics, run: bar.update(1), test_data=test_data, selection=OBJECTIVE)
    return [(result, record(result, data, results_dir, name, test_data, group)) for result in results]


def record(
    result: RunResult, data: Prepared, results_dir: Path, name: str, test_data: Prepared | None = None, config_id: str | None = None
) -> dict:
    """Checkpoint a finished run's model and append its row to results (with its configuration's id where it is one
    of several seeds); returns the row."""
    config = result.config
    trial_id = f"{name}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"
    checkpoint_dir = Path(results_dir) / "checkpoints" / trial_id
    if result.run is not None and result.history:
        with atomic_folder(checkpoint_dir) as tmp:  # a failed write (a full disk) leaves no half checkpoint
            result.run.save(tmp)
    row = trial_row(
        sweep=name,
        trial_id=trial_id,
        status=result.status,
        reason=result.reason,
        params=config.applicable(),
        history=result.history,
        objective=OBJECTIVE,
        wall_time_s=result.wall_time_s,
        device=result.device,
        data_manifest=data.located_manifest(),
        test_manifest=test_data.located_manifest() if test_data else None,
        n_params=result.n_params,
        checkpoint=relative_to_results(checkpoint_dir, results_dir) if result.history else None,
    )
    if config_id is not None:
        row["config_id"] = config_id
    ResultsWriter(results_dir).add(row, result.history, result.scores, result.samples)
    return row
