"""`hamtune sweep`: a Ray Tune Tuner with OptunaSearch over a declared space, results in Parquet.

The dataset goes into Ray's object store once (tune.with_parameters), so trials read it
zero-copy on every node without a shared filesystem. The Optuna study lives in the sweep folder
(SQLite) so optuna-dashboard can open it and a resumed sweep keeps its sampler's memory.
"""

from __future__ import annotations

import logging
import math
import os
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from hamtune.data.prepare import Prepared
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.gate import is_results, output
from hamtune.results.layout import EXPERIMENT, TRIALS
from hamtune.results.records import read_plan, read_record
from hamtune.results.store import load_results, write_distributions
from hamtune.sweep.space import SearchSpace, sampler_spec, tune_metric
from hamtune.sweep.tune.cluster import check_node_versions
from hamtune.sweep.tune.internals import AUTH_LOGGER, skip_callback_telemetry
from hamtune.train.checkpoint import KEEP_CHECKPOINTS
from hamtune.train.config import build_config
from hamtune.train.single import load_data

log = logging.getLogger(__name__)


class SweepInterrupted(HamtuneError):
    """Ctrl-C: Tune stops cleanly and returns; the sweep can be resumed."""

    exit_code = 130


@dataclass
class SweepOptions:
    """What the command line adds to a space file."""

    name: str | None = None
    results_root: Path = Path("results")
    address: str | None = None
    resume: bool = False
    storage: str | None = None
    num_samples: int | None = None
    gpus_per_trial: float | None = None
    num_cpus: int | None = None
    log_to: tuple[str, ...] = ()  # experiment trackers, beside the space's `log_to:`
    keep_checkpoints: str = "best"  # what a finished trial keeps: all | best (the delivered weights) | none
    overrides: dict | None = None  # the space keys and TrainConfig values the caller set (--set, --confirm-*, --no-floor), as given
    runtime_env: dict | None = None  # --runtime-env, over the space's runtime_env: key by key

    def __post_init__(self) -> None:
        """Checked before anything starts: a negative or zero count would run forever or wait forever."""
        if self.num_samples is not None and self.num_samples < 1:
            raise UsageError(f"--num-samples must be at least 1, got {self.num_samples}")
        check_resources(self.gpus_per_trial, self.num_cpus)
        if self.keep_checkpoints not in KEEP_CHECKPOINTS:
            raise UsageError(f"--keep-checkpoints must be one of {', '.join(KEEP_CHECKPOINTS)}, got {self.keep_checkpoints!r}")


def check_resources(gpus_per_trial: float | None, num_cpus: int | None, cpus_per_trial: float | None = None) -> None:
    """Resource requests a run can never be given (a negative GPU count waits forever), refused before Ray starts;
    sweep and reproduce alike."""
    if gpus_per_trial is not None and not (math.isfinite(gpus_per_trial) and gpus_per_trial >= 0):
        raise UsageError(f"--gpus-per-trial must be 0 or more (a fraction packs trials on a GPU), got {gpus_per_trial:g}")
    if gpus_per_trial is not None and gpus_per_trial > 1 and gpus_per_trial != int(gpus_per_trial):
        raise UsageError(f"--gpus-per-trial above 1 must be a whole number, got {gpus_per_trial:g}")
    if num_cpus is not None and num_cpus < 1:
        raise UsageError(f"--num-cpus must be at least 1, got {num_cpus}")
    if cpus_per_trial is not None and not (math.isfinite(cpus_per_trial) and cpus_per_trial > 0):
        raise UsageError(f"--cpus-per-trial must be more than 0, got {cpus_per_trial:g}")


TUNE_FORCED = {"TUNE_GLOBAL_CHECKPOINT_S": "0", "TUNE_DISABLE_AUTO_CALLBACK_LOGGERS": "1"}  # loggers: tune_loggers
TUNE_DEFAULTS = {  # a value the user set is kept
    "RAY_AIR_NEW_OUTPUT": "0",
    "TUNE_PRINT_ALL_TRIAL_ERRORS": "0",
    "TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
}
QUIETED_LOGGERS = {"ray.tune": logging.CRITICAL, "optuna": logging.WARNING}
PENDING_TRIALS = "TUNE_MAX_PENDING_TRIALS_PG"  # set per sweep by pending_trials() on a cluster that can grow


@contextmanager
def tune_settings() -> Iterator[None]:
    """Tune's own tables are noise next to our one line per trial; and the experiment state must be
    saved after every step, or a killed driver cannot be resumed against a persistent Optuna study.
    Set for one sweep only: a notebook's environment, loggers and warning filters are as they were afterwards."""
    saved_environment = {key: os.environ.get(key) for key in (*TUNE_FORCED, *TUNE_DEFAULTS, PENDING_TRIALS)}
    saved_levels = {name: logging.getLogger(name).level for name in QUIETED_LOGGERS}
    with warnings.catch_warnings():
        try:
            os.environ.update(TUNE_FORCED)
            for key, value in TUNE_DEFAULTS.items():
                os.environ.setdefault(key, value)
            warnings.filterwarnings("ignore", category=FutureWarning, module="ray")
            warnings.filterwarnings("ignore", module="optuna")
            for name, level in QUIETED_LOGGERS.items():
                logging.getLogger(name).setLevel(level)
            yield
        finally:
            for key, saved in saved_environment.items():
                if saved is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = saved
            for name, level in saved_levels.items():
                logging.getLogger(name).setLevel(level)


class NoAdviceToDisableAuth(logging.Filter):
    """Ray 2.60 turns token authentication on for a local cluster and logs, on every start, how to turn it
    off (the line ending "to opt out"): advice against the README's security stance. hamtune keeps
    authentication on and drops that one line where Ray logs it."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "to opt out" not in record.getMessage()


def quiet_auth_advice() -> None:
    logger = logging.getLogger(AUTH_LOGGER)
    if not any(isinstance(f, NoAdviceToDisableAuth) for f in logger.filters):
        logger.addFilter(NoAdviceToDisableAuth())


def start_ray(address: str | None, num_cpus: int | None = None, runtime_env: dict | None = None) -> None:
    """Join a cluster (`--address`, token authentication as the cluster has it; the trials' output comes to the
    driver's log, since on a cluster it would otherwise stay in a node's temp dir) or start a private local Ray,
    token-authenticated and without a dashboard (also where ray[default] is installed)."""
    import ray

    skip_callback_telemetry()
    if ray.is_initialized():
        return
    quiet_auth_advice()
    if address:
        try:
            ray.init(address=address, log_to_driver=True, logging_level=logging.WARNING, runtime_env=runtime_env)
        except (ConnectionError, RuntimeError) as exc:
            raise HamtuneError(
                f"could not join the Ray cluster at {address} ({first_line(exc, 200)}); clusters started "
                "with `ray start` use token authentication: export RAY_AUTH_MODE=token and RAY_AUTH_TOKEN_PATH "
                "(or copy the head's ~/.ray/auth_token), see docs/cluster.md"
            ) from None
    else:
        ray.init(
            address="local",
            num_cpus=num_cpus,
            include_dashboard=False,
            log_to_driver=False,
            logging_level=logging.WARNING,
            configure_logging=False,
            runtime_env=runtime_env,
        )


def concurrency(cpus: float, gpus: float, requested: int | None, *, elastic: bool = False) -> int | None:
    """Trials at once: `requested` (the space's max_concurrent) as a cap, else what fits. A private local Ray
    cannot grow, so a trial bigger than it is an error, and the limit is always explicit (Tune keeps only one
    trial pending for a searcher unless told, which serialises short trials). A cluster joined with --address can
    grow (nodes join, an autoscaler adds GPU nodes for queued demand): there nothing is capped unless asked,
    Tune's pending trials wait for room (see `pending_trials`), and what does not fit yet is a warning."""
    import ray

    resources = ray.cluster_resources()
    have_cpus, have_gpus = resources.get("CPU", 0), resources.get("GPU", 0)
    if elastic:
        if cpus > have_cpus or gpus > have_gpus:
            log.warning(
                "trials ask for %g CPU(s) and %g GPU(s) each; the Ray cluster has %g CPU(s) and %g GPU(s) now: they "
                "are queued until nodes with room join",
                cpus,
                gpus,
                have_cpus,
                have_gpus,
            )
        return requested
    if gpus > 0 and have_gpus == 0:
        raise HamtuneError(f"trials ask for {gpus:g} GPU each but the Ray cluster has none; use --gpus-per-trial 0")
    if gpus > have_gpus:
        raise HamtuneError(f"trials ask for {gpus:g} GPUs each but the Ray cluster has {have_gpus:g}; lower --gpus-per-trial")
    if cpus > have_cpus:
        raise HamtuneError(
            f"trials ask for {cpus:g} CPUs each (resources.cpus) but the Ray cluster has "
            f"{have_cpus:g}; lower resources.cpus or raise --num-cpus"
        )
    fits = fitting(cpus, gpus)
    return max(1, min(fits, requested or fits))


def fitting(cpus: float, gpus: float) -> int:
    """How many trials the cluster's resources hold now (0 when none fits yet)."""
    import ray

    resources = ray.cluster_resources()
    fits = int(resources.get("CPU", 0) // cpus)
    return min(fits, int(resources.get("GPU", 0) // gpus)) if gpus > 0 else fits


def pending_trials(cpus: float, gpus: float) -> dict[str, str]:
    """On a cluster that can grow, Tune keeps as many trials pending as fit now (at least one): they start as soon
    as a node joins, and their resource requests are the demand an autoscaler scales up for. A value the user set
    for TUNE_MAX_PENDING_TRIALS_PG is kept."""
    return {PENDING_TRIALS: os.environ.get(PENDING_TRIALS, str(max(1, fitting(cpus, gpus))))}


def make_searcher(
    space: SearchSpace, name: str, directory: Path, search_trials: int | None = None, *, on_cuda: bool = False, manifest: dict | None = None
):
    """hamtune's Optuna searcher for a space: its study in the results folder, mirrored from trials.parquet;
    with a confirm stage, the confirm trials follow the `search_trials` searched ones (each configuration's
    seeds fused into one trial where the space's `fuse` allows: `on_cuda` says whether trials get a GPU)."""
    from hamtune.sweep.study import study_url
    from hamtune.sweep.tune.confirm import ConfirmingSearch
    from hamtune.sweep.tune.study import MirroredOptunaSearch

    metrics = [tune_metric(m) for m, _ in space.objectives]
    modes = [m for _, m in space.objectives]
    common: dict[str, Any] = dict(
        space=space.define_by_run(),
        metric=metrics if space.multi_objective else metrics[0],
        mode=modes if space.multi_objective else modes[0],
        points_to_evaluate=[dict(p) for p in space.points] or None,
        sampler_spec=sampler_spec(space),
        study_name=name,
        storage_url=study_url(directory),
        results_path=str(directory),
    )
    if space.confirm_trials:
        return ConfirmingSearch(
            search_trials=search_trials or space.num_samples,
            top=space.confirm_top,
            seeds=space.confirm_seeds,
            fuse=space.fuse,
            on_cuda=on_cuda,
            manifest=manifest,
            **common,
        )
    return MirroredOptunaSearch(**common)


def _scheduler(space: SearchSpace):
    from ray.tune.schedulers import FIFOScheduler

    from hamtune.sweep.tune.confirm import ConfirmingASHA

    if space.scheduler["name"] != "asha":
        return FIFOScheduler()
    metric, mode = space.objectives[0]
    return ConfirmingASHA(
        time_attr="epoch",
        metric=tune_metric(metric),
        mode=mode,
        max_t=space.max_epochs,
        grace_period=int(space.scheduler.get("grace_period", 1)),
        reduction_factor=space.scheduler.get("reduction_factor", 2),
    )


def _trainable(space: SearchSpace, data: Prepared, test_data: Prepared | None, gpus: float):
    from ray import tune

    from hamtune.sweep.tune.trainable import run_trial

    resources = {"cpu": space.resources["cpus"], "gpu": gpus}
    trainable = tune.with_parameters(run_trial, data=data, test_data=test_data, objectives=tuple(space.objectives))
    return tune.with_resources(trainable, resources)


def in_memory(data: Prepared) -> Prepared:
    """A copy whose images are a plain array, so Ray ships pixels (not a file path) to every node."""
    import numpy as np

    return Prepared(data.path, np.ascontiguousarray(data.images), data.meta, data.manifest)


def tune_loggers() -> list:
    """Tune's own per-trial files: result.json and progress.csv (Tune reads them back), not its TensorBoard event
    files, which `tensorboard --logdir results/<name>` would list beside hamtune's runs (each trial twice)."""
    from ray.tune.logger import CSVLoggerCallback, JsonLoggerCallback

    return [JsonLoggerCallback(), CSVLoggerCallback()]


def experiment_path(storage: str) -> str:
    """Where Tune keeps a sweep's experiment state (a path or URI under the storage)."""
    return f"{storage.rstrip('/')}/{EXPERIMENT}"


def make_tuner(
    space: SearchSpace,
    trainable,
    recorder,
    *,
    name: str,
    directory: Path,
    storage: str,
    num_samples: int,
    max_concurrent: int | None,
    resume: bool,
    trackers: tuple = (),
    on_cuda: bool = False,
    manifest: dict | None = None,
    elastic: bool = False,
):
    """The Tuner of a sweep: Optuna searching, the space's scheduler, the recorder writing results; or, on
    --resume, the interrupted experiment restored with its unfinished trials."""
    from ray import tune

    from hamtune.sweep.tune import trust
    from hamtune.sweep.tune.repair import RepairCheckpoints

    if resume:
        return tune.Tuner.restore(experiment_path(storage), trainable, resume_unfinished=True, resume_errored=False)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=make_searcher(space, name, directory, num_samples, on_cuda=on_cuda, manifest=manifest),
            scheduler=_scheduler(space),
            num_samples=num_samples + space.confirm_trials,
            max_concurrent_trials=max_concurrent,
            # a trial's process serves the next trial (no second start of Python and torch), except on a cluster
            # that can grow: there a reused process on an old node took every trial before the processes starting
            # on a node that had just joined were up, and the new node was never used
            reuse_actors=not elastic,
        ),
        run_config=tune.RunConfig(
            name=EXPERIMENT,
            storage_path=storage,
            verbose=0,
            # trackers after the recorder: they log its row
            callbacks=[RepairCheckpoints(), recorder, trust.TrustRecorder(), *trackers, *tune_loggers()],
            failure_config=tune.FailureConfig(max_failures=space.max_failures),
            checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
        ),
    )


def tune_rows(directory: Path) -> int:
    """Rows of the folder's Tune trials: not the rows a finished sweep adds (its seed ensemble, its floor), which
    carry a `model` name."""
    if not (directory / TRIALS).exists():
        return 0
    trials = load_results(directory)[0]
    return int(trials["model"].isna().sum()) if "model" in trials.columns else len(trials)


def run_sweep(space: SearchSpace, options: SweepOptions) -> Path:
    """Run (or resume) a sweep; returns its results folder. One sweep at a time writes a folder."""
    from hamtune.paths import results_folder, results_lock

    with results_lock(results_folder(options.results_root, options.name or space.name)), tune_settings():
        return _run_sweep(space, options)


def _run_sweep(space: SearchSpace, options: SweepOptions) -> Path:
    import ray
    from ray import tune

    from hamtune.sweep import provenance
    from hamtune.sweep.trackers import require
    from hamtune.sweep.tune import trust
    from hamtune.sweep.tune.recorder import ResultsRecorder
    from hamtune.sweep.tune.trackers import tracker_callbacks

    name = options.name or space.name
    directory = (Path(options.results_root) / name).resolve()
    # a shared --storage holds each sweep under its name: two sweeps never share (and overwrite) one tuner.pkl
    storage = f"{options.storage.rstrip('/')}/{name}" if options.storage else str(directory)
    experiment = experiment_path(storage)
    if options.storage and "://" not in options.storage:
        output(storage, flag="--storage", kind="folder", own=lambda p: is_results(p) or (p / EXPERIMENT).is_dir(), existing="add")
    if options.resume:
        trust.put_back_recorded_state(experiment)  # before Tune looks at anything: an unrecorded file is never read
    if options.resume and not tune.Tuner.can_restore(experiment):
        if (directory / TRIALS).exists():  # the results are here, the Tune state elsewhere
            raise HamtuneError(
                f"{experiment}: no Tune state to resume, though {directory} holds results; if the sweep "
                "was started with --storage, pass the same --storage"
            )
        raise HamtuneError(f"{experiment}: no sweep to resume here (start it without --resume)")
    if options.resume:
        trust.verify(experiment)  # before Tune unpickles anything
        read_plan(directory), read_record(directory)  # a broken confirm.json or sweep.json is named now, not after training
    if not options.resume and (directory / TRIALS).exists():
        raise HamtuneError(f"{directory} already holds a sweep; pass --resume to continue it or --name for a new one")
    if not options.resume:
        trust.check_usable()
    num_samples = space.num_samples if options.num_samples is None else options.num_samples
    if not space.params and num_samples > 1:
        log.warning(
            "%s searches no parameter (no params:): its %d trials all run one configuration and differ only "
            "by chance; add params or use --num-samples 1",
            space.path,
            num_samples,
        )
    gpus = space.resources["gpus"] if options.gpus_per_trial is None else options.gpus_per_trial
    tracked = tuple(dict.fromkeys(space.log_to + tuple(options.log_to)))
    for tracker in tracked:
        require(tracker)
    base = build_config(space.fixed, where=f"{space.path}: fixed")
    data, base = load_data(space.data, base)
    test_data = load_data(space.test_data, base)[0] if space.test_data else None
    directory.mkdir(parents=True, exist_ok=True)
    if not options.resume:
        write_distributions(directory, space.distributions())
    confirm = (
        f" + up to {space.confirm_trials} confirming the best {space.confirm_top} on {space.confirm_seeds} new seeds each"
        if space.confirm_trials
        else ""
    )
    log.info(
        "sweep %s: %d trial(s)%s of %s on %s (%d images); results -> %s",
        name,
        num_samples,
        confirm,
        space.path.name,
        data.name,
        data.manifest["count"],
        directory,
    )
    start_ray(options.address, options.num_cpus, {**(space.runtime_env or {}), **(options.runtime_env or {})} or None)
    elastic = options.address is not None
    if elastic:
        check_node_versions()
    max_concurrent = concurrency(space.resources["cpus"], gpus, space.max_concurrent, elastic=elastic)
    if elastic:
        os.environ.update(pending_trials(space.resources["cpus"], gpus))
    provenance.start(directory, space, name, num_samples, data.located_manifest(), ray.cluster_resources(), options)
    trackers = tracker_callbacks(
        tracked, directory, name, data.located_manifest(), tuple(p.name for p in space.params), read_record(directory)
    )
    trainable = _trainable(space, in_memory(data), in_memory(test_data) if test_data else None, gpus)
    recorder = ResultsRecorder(
        directory,
        name,
        space.objectives,
        data.located_manifest(),
        test_data.located_manifest() if test_data else None,
        num_samples + space.confirm_trials,
        options.keep_checkpoints,
    )
    tuner = make_tuner(
        space,
        trainable,
        recorder,
        name=name,
        directory=directory,
        storage=storage,
        num_samples=num_samples,
        max_concurrent=max_concurrent,
        resume=options.resume,
        trackers=tuple(trackers),
        on_cuda=gpus > 0,
        manifest=data.manifest,
        elastic=elastic,
    )
    if not options.resume:
        trust.record_tuner(experiment)
    before = tune_rows(directory)
    started = time.perf_counter()
    tuner.fit()
    provenance.finish(directory, time.perf_counter() - started)
    recorded = tune_rows(directory)
    plan = read_plan(directory)
    expected = num_samples + (plan["trials"] if plan else space.confirm_trials)
    if options.resume and recorded == before and recorded < expected:
        raise HamtuneError(
            f"sweep {name}: its Tune state holds {recorded} trial(s), all finished; --resume cannot add "
            f"trials (--num-samples {num_samples}), so start a new sweep under a new --name"
        )
    if recorded < expected:
        raise SweepInterrupted(
            f"sweep {name} stopped with {recorded} of {expected} trials finished (all kept in {directory}); "
            f"continue with: hamtune sweep {space.path} --name {name} --resume"
        )
    return directory
