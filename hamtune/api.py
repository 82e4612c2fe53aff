"""hamtune's Python API: what the `hamtune` command does, as functions a notebook calls.

The only orchestrator: one function per command (data synth/prepare/info, train, sweep, baselines,
ensemble, reproduce, report, export, score, demo) checks the arguments, takes the results lock and
calls the modules that do the work; `hamtune/cli.py` only parses, calls these and prints what they
return. Each takes plain values (paths, dicts, keyword settings), does exactly what its command does
(same validation, same results layout, same one-line `HamtuneError` naming the argument) and returns
something to keep working with: a results folder or a `Results` over it, a DataFrame, a small record
of what was done (`Baselines`, `Ensemble`, `Reproduction`...). Nothing is printed. Re-exported lazily by
`hamtune/__init__.py`, so `import hamtune` stays cheap and torch, Ray and pandas load on first use.
The names differ from the commands where a command's name is a subpackage's (hamtune.sweep, .train,
.report, .export): Python binds a subpackage to its name on the package once it is imported, so a
function called `hamtune.train` would turn into a module under a notebook's feet.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from hamtune import arguments
from hamtune.errors import HamtuneError, UsageError

if TYPE_CHECKING:
    from hamtune.data.prepare import Prepared
    from hamtune.results.rank import Metric

log = logging.getLogger(__name__)


_path = arguments.path


def _label(argument: str, labels: Mapping[str, str] | None) -> str:
    """How an error names an argument: the API's keyword, or the flag the CLI passes in `labels` for it."""
    return (labels or {}).get(argument, argument)


def _space(space: str | Path | dict, overrides: dict):
    from hamtune.sweep.space import load_space, parse_space

    if isinstance(space, Mapping):
        space = arguments.mapping(space, "space")
        return parse_space({**space, **overrides}, Path(f"{space.get('name', 'space')}.yaml"))
    return load_space(_path(space, "space"), overrides)


def load_space(path: str | Path, **overrides):
    """A validated search-space file (SearchSpace); keyword overrides as `hamtune sweep --set` takes them."""
    from hamtune.sweep.space import load_space as load

    return load(_path(path, "path"), arguments.mapping(overrides, "overrides") or None)


def run_sweep(
    space: str | Path | dict,
    *,
    name: str | None = None,
    results: str | Path = "results",
    data: str | None = None,
    test_data: str | None = None,
    num_samples: int | None = None,
    address: str | None = None,
    resume: bool = False,
    num_cpus: int | None = None,
    log_to: tuple[str, ...] = (),
    keep_checkpoints: str = "best",
    storage: str | None = None,
    gpus_per_trial: float | None = None,
    overrides: Mapping[str, object] | None = None,
    runtime_env: Mapping[str, object] | None = None,
    **more,
) -> Results:
    """Run (or resume) a sweep of a space file (or the same mapping as a dict) through the whole pipeline (search,
    confirm stage, delivered ensemble, the non-learned floor, recorded choice, trackers); returns its results folder as
    `Results`. `overrides` (and keywords) are top-level space keys or fixed TrainConfig fields, as `hamtune sweep --set`
    takes them; `floor=False` (the space key `floor: false`, `--no-floor`) leaves out the non-learned floor rows."""
    from hamtune.sweep.tune.runner import SweepOptions
    from hamtune.sweep.tune.runner import run_sweep as run

    a = arguments
    name, data, test_data = a.optional_text(name, "name"), a.optional_text(data, "data"), a.optional_text(test_data, "test_data")
    num_samples, num_cpus = a.optional_integer(num_samples, "num_samples"), a.optional_integer(num_cpus, "num_cpus")
    address, storage = a.optional_text(address, "address"), a.optional_text(storage, "storage")
    resume, log_to, keep_checkpoints = a.flag(resume, "resume"), a.texts(log_to, "log_to"), a.text(keep_checkpoints, "keep_checkpoints")
    gpus_per_trial = a.optional_number(gpus_per_trial, "gpus_per_trial", finite=False)  # its range: runner.check_resources
    changes = {
        **a.mapping(overrides, "overrides"),
        **more,
        **({"data": data} if data else {}),
        **({"test_data": test_data} if test_data else {}),
    }
    chosen = _space(space, changes)
    options = SweepOptions(
        name=name,
        results_root=_path(results, "results"),
        address=address,
        resume=resume,
        num_samples=num_samples,
        num_cpus=num_cpus,
        log_to=tuple(log_to),
        keep_checkpoints=keep_checkpoints,
        storage=storage,
        gpus_per_trial=gpus_per_trial,
        overrides={**(overrides or {}), **more},
        runtime_env=dict(runtime_env) if runtime_env else None,
    )
    directory = run(chosen, options)
    trackers = chosen.log_to + options.log_to
    after_sweep(directory, options.name or chosen.name, trackers, floor=chosen.floor, keep=chosen.confirm_keep or None)
    return Results(directory)


def deliver_confirmed(directory: Path, device: str = "auto", keep: int | None = None) -> dict | None:
    """A sweep with a confirm stage delivers its chosen configuration (the best MEAN validation objective over
    2+ seeds) as that configuration's seed ensemble (with `keep`, of its `keep` seeds best on validation): one more
    results row, built once (a resumed or repeated call finds it). None without a confirm stage or a configuration of
    2+ finished seeds."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_lock
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.rank import DEEP_KINDS, ensemble_of, objective

    directory, device = _path(directory, "directory"), arguments.text(device, "device")
    trials = load_results(directory)[0]
    if "stage" not in trials.columns or not (trials["stage"] == "confirm").any():
        return None
    seeds = seed_rows(trials[trials["kind"].isin(DEEP_KINDS)])
    table = per_configuration(seeds, objective(trials))
    confirmed = table[table["n"] >= 2]
    if not len(confirmed):
        return None
    members = sorted(seeds.loc[seeds["config_id"] == confirmed["config_id"].iloc[0], "trial_id"].astype(str))
    built = ensemble_of(trials, members)
    if len(built):
        return built.iloc[0].to_dict()
    with results_lock(Path(directory)):
        return build(Path(directory), 0, Path(directory).parent, Path(directory).name, device, members=members, keep=keep)[1]


def after_sweep(directory: Path, name: str, trackers: tuple[str, ...], floor: bool = True, keep: int | None = None) -> None:
    """What a finished sweep does last: with a confirm stage, deliver the chosen configuration's seed ensemble
    (deliver_confirmed); score the non-learned floor on the same split (score_floor; not with `floor` False); record
    the choice (chosen.json) once every row is in and name it in the Optuna study; then name it in every tracker, with
    the HTML report and the chosen model's bundle (MLflow: to the parent run, the bundle also as an MLflow Model of the
    delivered run; W&B: a `report` run of the sweep's group)."""
    import tempfile

    from hamtune.results.chosen import record_choice
    from hamtune.sweep.floor import score_floor
    from hamtune.sweep.study import record_chosen

    deliver_confirmed(directory, keep=keep)
    score_floor(directory, enabled=floor)
    chosen = record_choice(directory)
    record_chosen(directory, name)
    if not trackers:
        return
    from hamtune.export.bundle import export_trial
    from hamtune.report.command import run_report
    from hamtune.sweep.trackers import log_artifacts, log_delivered, log_wandb_artifacts

    if not {"mlflow", "wandb"} & set(trackers) or chosen is None:
        log_delivered(directory, name, trackers)
        return
    html = run_report([directory], quiet=True)
    assert html is not None  # the default report writes its page
    with tempfile.TemporaryDirectory(prefix="hamtune-bundle-") as scratch:
        bundle, _ = export_trial(directory, None, Path(scratch) / "model", trial=chosen.trial_id)
        delivered = log_delivered(directory, name, trackers)
        if delivered is not None:
            from hamtune.export.mlflow_model import log_bundle_model

            log_bundle_model(delivered, bundle)
        if "mlflow" in trackers:
            log_artifacts(directory, name, {"report": html, "model": bundle})
        if "wandb" in trackers:
            log_wandb_artifacts(directory, name, {"report.html": html, "model": bundle})


def train_model(
    preset: str | None = None,
    *,
    data: str = "synthetic",
    test_data: str | None = None,
    results: str | Path = "results",
    name: str | None = None,
    progress: bool = True,
    seeds: int = 1,
    keep: int | None = None,
    fuse: str = "auto",
    **settings,
) -> Path:
    """Train one config (a preset and/or TrainConfig fields as keywords) like `hamtune train`; returns its results folder.
    With `seeds` > 1 the config trains on seeds seed..seed+N-1 and their seed ensemble is delivered as one more row
    (with `keep`, the ensemble of the `keep` seeds best on validation)."""
    from hamtune.train.config import FUSE, build_config

    a = arguments
    preset, data, test_data = a.optional_text(preset, "preset"), a.text(data, "data"), a.optional_text(test_data, "test_data")
    name, progress, fuse = a.optional_text(name, "name"), a.flag(progress, "progress"), a.text(fuse, "fuse", FUSE)
    seeds, keep = a.integer(seeds, "seeds", 1), a.optional_integer(keep, "keep", 2)
    config = build_config({"preset": preset, **settings}, where="hamtune.train()")
    return train_seeds(
        config,
        data,
        test_data=test_data,
        results=_path(results, "results"),
        name=name,
        progress=progress,
        seeds=seeds,
        keep=keep,
        fuse=fuse,
    ).directory


@dataclass
class Trained:
    """What `hamtune train` trained: each seed's run and row, and the seed ensemble's row when there are 2+ seeds."""

    directory: Path
    data_name: str
    runs: list
    ensemble: dict | None


def train_seeds(
    config,
    data: str,
    *,
    test_data: str | None = None,
    results: Path = Path("results"),
    name: str | None = None,
    progress: bool = True,
    seeds: int = 1,
    keep: int | None = None,
    fuse: str = "auto",
    skip_missing: bool = False,
) -> Trained:
    """Train `config` on `seeds` seeds (one results row each) under the results folder's lock; with 2+ completed
    seeds, their ensemble (scores standardised on validation normals, averaged; with `keep`, of the `keep` seeds best
    on validation) is the delivered model's row."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_folder, results_lock
    from hamtune.results.chosen import record_choice
    from hamtune.train.single import check_seeds, load_data, run_seeds_and_record

    check_seeds(config, seeds, keep)
    name = name or config.preset or "train"
    directory = results_folder(Path(results), name)
    with results_lock(directory):
        prepared, config = load_data(data, config, progress=progress, skip_missing=skip_missing)
        external = load_data(test_data, config, progress=progress)[0] if test_data else None
        runs = run_seeds_and_record(config, seeds, prepared, directory, name, test_data=external, progress=progress, fuse=fuse)
        finished = [row["trial_id"] for result, row in runs if result.status == "completed"]
        ensemble = None
        if seeds > 1 and len(finished) >= 2:
            ensemble = build(
                directory,
                0,
                directory.parent,
                directory.name,
                config.device if config.device != "auto" else "cpu",
                members=finished,
                keep=keep,
            )[1]
        record_choice(directory)
    return Trained(directory, prepared.name, runs, ensemble)


def load_results(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """trials, epochs and scores of a results folder (one consistent snapshot, even while a sweep writes it)."""
    from hamtune.results.store import load_results as load

    return load(_path(directory, "directory"))


def rank(
    results: str | Path | pd.DataFrame, *, metric: str = "test_auroc", rank_by: str | None = None, scores: pd.DataFrame | None = None
) -> pd.DataFrame:
    """The leaderboard the report prints: trials chosen on the sweep's validation objective (or `rank_by`),
    best first with a 1-based `rank`, reporting `metric`, with the `floor` flag and 95% bootstrap intervals of
    test AUROC/AUPRC (`test_auroc_low`...) from the per-image scores. Takes a results folder, or its trials
    frame (and `scores`, its per-image scores, for the intervals)."""
    from hamtune.results.intervals import with_intervals
    from hamtune.results.rank import objective, resolve_metric
    from hamtune.results.rank import rank as ranking

    metric, rank_by = arguments.text(metric, "metric"), arguments.optional_text(rank_by, "rank_by")
    if scores is not None and not isinstance(scores, pd.DataFrame):
        raise UsageError(f"scores must be a pandas DataFrame (a results folder's scores), got {type(scores).__name__}")
    if isinstance(results, pd.DataFrame):
        trials = results
    else:
        trials, _, scores = load_results(_path(results, "results"))
    select = resolve_metric(rank_by, trials) if rank_by else objective(trials)
    board = next(iter(ranking(trials, resolve_metric(metric, trials), select).boards.values()))
    return with_intervals(board, scores) if scores is not None else board


def configurations(results: str | Path | pd.DataFrame, *, rank_by: str | None = None) -> pd.DataFrame:
    """Configurations over seeds (the confirm stage's and `reproduce`'s seeds included): one row per configuration
    with n seeds and the mean, sd and 95% interval of its validation and test metrics, best mean validation
    objective first (configurations with 2+ seeds ahead). Takes a results folder or its trials frame."""
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.layout import REPRODUCE
    from hamtune.results.rank import objective, resolve_metric
    from hamtune.results.store import read_parquet

    reproduced = None
    rank_by = arguments.optional_text(rank_by, "rank_by")
    if isinstance(results, pd.DataFrame):
        trials = results
    else:
        trials = load_results(_path(results, "results"))[0]
        if (Path(results) / REPRODUCE).exists():
            reproduced = read_parquet(Path(results) / REPRODUCE)
    select = resolve_metric(rank_by, trials) if rank_by else objective(trials)
    return per_configuration(seed_rows(trials, reproduced), select)


def write_report(*results: str | Path, html: str | Path | None = None, metric: str = "test_auroc", rank_by: str | None = None) -> Path:
    """Write the self-contained HTML report of one or more results folders; returns its path. Nothing is printed
    (`hamtune report` prints the leaderboards; `rank` returns them as a frame)."""
    from hamtune.report.command import run_report

    if not results:
        raise HamtuneError("hamtune.write_report(): name at least one results folder")
    metric, rank_by = arguments.text(metric, "metric"), arguments.optional_text(rank_by, "rank_by")
    out = run_report(
        [_path(r, "results") for r in results], metric=metric, rank_by=rank_by, html=_path(html, "html") if html is not None else None
    )
    assert out is not None
    return out


def make_report(
    results: list[str | Path] | None = None,
    *,
    metric: str = "test_auroc",
    rank_by: str | None = None,
    top: int | None = None,
    by: str | None = None,
    html: str | Path | None = None,
    no_html: bool = False,
    output_format: str = "table",
    show: Callable[[str], None] | None = None,
) -> Path | None:
    """What `hamtune report` does, with each of its options: the HTML report of `results` (default: every results
    folder under ./results) and, through `show`, the leaderboards (or methods cards) as text in `output_format`;
    returns the HTML's path (None with no_html or a csv, json or methods format: those only print; csv and json carry
    every row unless `top` is given). `write_report` is the short form."""
    from hamtune.report.command import FORMATS, run_report

    a = arguments
    if results is not None and not isinstance(results, (list, tuple)):
        raise UsageError(f"results must be a list of results folders, got {type(results).__name__} {results!r:.80}")
    folders = None if results is None else [_path(r, "results") for r in results]
    metric, rank_by = a.text(metric, "metric"), a.optional_text(rank_by, "rank_by")
    top, by = a.optional_integer(top, "top", 1), a.optional_text(by, "by")
    no_html, output_format, show = a.flag(no_html, "no_html"), a.text(output_format, "output_format", FORMATS), a.function(show, "show")
    return run_report(
        folders,
        metric=metric,
        rank_by=rank_by,
        top=top,
        by=by,
        html=None if html is None else _path(html, "html"),
        no_html=no_html,
        output_format=output_format,
        show=show,
    )


def _export_arguments(rank, metric, force, trial) -> tuple[int | None, str | None, bool, str | None]:
    a = arguments
    return (a.optional_integer(rank, "rank", 1), a.optional_text(metric, "metric"), a.flag(force, "force"), a.optional_text(trial, "trial"))


@dataclass
class Exported:
    """An exported bundle: its folder, the results row of the trial in it (with its `rank`) and its programs."""

    directory: Path
    row: pd.Series
    programs: list[Path]


def export_trial(
    results: str | Path,
    out: str | Path,
    *,
    rank: int | None = None,
    metric: str | None = None,
    force: bool = False,
    formats: tuple[str, ...] = ("torch",),
    trial: str | None = None,
) -> Exported:
    """`export_model` with what the command reports about it: which trial was exported and its portable programs."""
    from hamtune.export.bundle import PROGRAMS
    from hamtune.export.bundle import export_trial as export
    from hamtune.export.programs import programs_wanted

    rank, metric, force, trial = _export_arguments(rank, metric, force, trial)
    folder, row = export(_path(results, "results"), rank, _path(out, "out"), metric, force, formats, trial)
    return Exported(folder, row, [folder / PROGRAMS[f] for f in programs_wanted(formats) if (folder / PROGRAMS[f]).exists()])


def export_model(
    results: str | Path,
    out: str | Path,
    *,
    rank: int | None = None,
    metric: str | None = None,
    force: bool = False,
    formats: tuple[str, ...] = ("torch",),
    trial: str | None = None,
) -> Path:
    """Export the chosen model (chosen.json; the default), the trial ranked `rank` (by the sweep's validation
    objective, or `metric`), or the trial `trial`, as a bundle that `score` uses; `formats` adds portable programs
    beside the weights ("onnx", "torch-export")."""
    from hamtune.export.bundle import export_trial

    rank, metric, force, trial = _export_arguments(rank, metric, force, trial)
    folder, _ = export_trial(_path(results, "results"), rank, _path(out, "out"), metric, force, formats, trial)
    return folder


def score(
    model: str | Path, *inputs: str | Path, device: str = "auto", format: str = "torch", maps: str | Path | None = None
) -> pd.DataFrame:
    """Score images (files, folders or a prepared cache) with an exported bundle: image, score, flagged (score > the
    threshold chosen on validation), exactly as `hamtune score` writes them; with `maps`, each image's anomaly map
    written there as <map>.npy and <map>.png (column `map`)."""
    from hamtune.export.bundle import load_bundle
    from hamtune.export.score import score_inputs

    if not inputs:
        raise HamtuneError("hamtune.score(): name at least one image, folder or prepared cache to score")
    device, format = _score_arguments(device, format)
    folder, paths, into = _path(model, "model"), [_path(i, "inputs") for i in inputs], None if maps is None else _path(maps, "maps")
    return score_inputs(load_bundle(folder), paths, device=device, progress=False, format=format, maps=into).table


def _score_arguments(device, format) -> tuple[str, str]:
    from hamtune.export import FORMATS
    from hamtune.train.config import CHOICES

    return arguments.text(device, "device", CHOICES["device"]), arguments.text(format, "format", FORMATS)


def verify(model: str | Path, *, program: str = "torch", device: str = "cpu"):
    """Recompute an exported bundle's golden vectors (golden.npz) with `program` ("torch", "onnx": model.onnx and
    score.onnx, "torch-export"; "pt2" is the same) and compare them with the exported scores and decisions; raises
    HamtuneError naming the first vector that differs, else returns what passed (.programs, .count, .max_error)."""
    from hamtune.export.verify import verify_bundle

    return verify_bundle(_path(model, "model"), "torch-export" if program == "pt2" else program, device)


# ---- data ---------------------------------------------------------------------------------------------


def synthesize_data(
    out: str | Path,
    *,
    n: int = 2000,
    seed: int = 0,
    image_size: tuple[int, int] = (600, 450),
    workers: int | None = None,
    progress: bool = True,
) -> Path:
    """Write a synthetic HAM-like dataset in the original release's layout (as `hamtune data synth`), so everything
    runs without the real data; returns `out` (at once when it already holds these settings)."""
    from hamtune.data.synth import synthesize_release

    return synthesize_release(
        _path(out, "out"),
        n=arguments.integer(n, "n"),
        seed=seed,
        image_size=image_size,
        workers=workers,
        progress=arguments.flag(progress, "progress"),
    )


def data_info(cache: str | Path) -> dict:
    """A prepared cache's manifest, its contents verified against it first (as `hamtune data info`)."""
    from hamtune.data.prepare import load_prepared

    return load_prepared(_path(cache, "cache")).manifest


def prepare_data(
    source: str | Path,
    *,
    size: int | None = None,
    crop: str = "center",
    channels: int = 3,
    out: str | Path | None = None,
    workers: int | None = None,
    skip_missing: bool = False,
    metadata: str | Path | None = None,
    force: bool = False,
    progress: bool = True,
) -> Prepared:
    """Decode any HAM10000 form into a cache (as `hamtune data prepare`; a re-run is a cache hit) and open it, so
    training, sweeps and baselines read decoded arrays instead of JPEGs; `.path` and `.manifest` describe it."""
    from hamtune.data.prepare import load_prepared, prepare

    a = arguments
    size, channels, workers = a.optional_integer(size, "size"), a.integer(channels, "channels"), a.optional_integer(workers, "workers")
    crop, skip_missing = a.text(crop, "crop"), a.flag(skip_missing, "skip_missing")
    force, progress = a.flag(force, "force"), a.flag(progress, "progress")
    folder = prepare(
        _path(source, "source"),
        size=size,
        crop=crop,
        channels=channels,
        out=None if out is None else _path(out, "out"),
        workers=workers,
        skip_missing=skip_missing,
        metadata=None if metadata is None else _path(metadata, "metadata"),
        force=force,
        progress=progress,
    )
    return load_prepared(folder, verify=False)


# ---- baselines ----------------------------------------------------------------------------------------


@dataclass
class Baselines:
    """What `hamtune baselines` recorded: one results row per method (and score), in `directory`."""

    directory: Path
    data_name: str
    protocol: str
    rows: list[dict]
    seconds: float


def run_baselines(
    data: str | Path,
    *,
    methods: str | list[str] | tuple[str, ...] | None = None,
    protocol: str | None = None,
    test_data: str | Path | None = None,
    name: str = "baselines",
    results: str | Path = "results",
    settings: Mapping[str, object] | None = None,
    labels: Mapping[str, str] | None = None,
    **more,
) -> Baselines:
    """Fit the classical baselines (PCA, blur, down/up-sampling, IsolationForest, k-NN) on exactly the deep models'
    splits, so a sweep's leaderboard shows what a network adds. `settings` (and keywords) are the split's
    TrainConfig fields (split_seed, max_train_images...), as `--set` takes them; the arguments are checked before
    anything is created, the data is loaded under the results folder's lock. `labels` renames arguments in error
    messages (the CLI: its flags)."""
    from hamtune.baselines import DEFAULT_METHODS, parse_methods
    from hamtune.baselines import run_baselines as run
    from hamtune.config_fields import DATA_KEYS
    from hamtune.paths import results_folder, results_lock
    from hamtune.results.chosen import record_choice
    from hamtune.train.config import build_config
    from hamtune.train.single import load_data

    labels = arguments.mapping(labels, "labels")
    where = _label("settings", labels)
    name, protocol = arguments.text(name, "name"), arguments.optional_text(protocol, "protocol")
    if methods is not None and not isinstance(methods, str):
        methods = ",".join(arguments.texts(methods, "methods"))
    data, test_data = _path(data, "data"), None if test_data is None else _path(test_data, "test_data")
    settings = {**arguments.mapping(settings, where), **more}
    unused = sorted(set(settings) - set(DATA_KEYS))
    if unused:
        raise UsageError(
            f"{where} {', '.join(unused)}: not used by classical baselines (they fit no network); they take {', '.join(DATA_KEYS)}"
        )
    if protocol:
        settings["protocol"] = protocol
    config = build_config(settings, where=where)
    chosen = parse_methods(methods or DEFAULT_METHODS, seed=config.seed)
    directory = results_folder(_path(results, "results"), name, _label("name", labels))
    with results_lock(directory):
        prepared, config = load_data(str(data), config)
        external = load_data(str(test_data), config)[0] if test_data else None
        started = time.perf_counter()
        rows = run(config, prepared, chosen, directory, name, test_data=external)
        record_choice(directory)
    return Baselines(directory, prepared.name, config.protocol, rows, time.perf_counter() - started)


# ---- ensemble, reproduce --------------------------------------------------------------------------------


@dataclass
class Ensemble:
    """An ensemble recorded as a one-row results folder: `row` has its members, metrics and threshold."""

    directory: Path
    row: dict


def build_ensemble(
    results: str | Path, *, top: int = 3, name: str | None = None, root: str | Path = "results", device: str = "auto"
) -> Ensemble:
    """Combine the `top` trials of a results folder chosen on validation into one detector (each member's score
    standardised on validation normals, averaged) and record it in root/<name> (default <sweep>-ensemble), which
    `export_model` then exports like any trial."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_folder, results_lock
    from hamtune.results.chosen import record_choice

    source = _path(results, "results")
    top, name, device = arguments.integer(top, "top", 1), arguments.optional_text(name, "name"), arguments.text(device, "device")
    load_results(source)  # a folder that is not one is named before anything is created
    directory = results_folder(_path(root, "root"), name or f"{source.resolve().name}-ensemble")
    with results_lock(directory):
        out, row = build(source, top, directory.parent, directory.name, device)
        record_choice(out)
    return Ensemble(out, row)


@dataclass
class Reproduction:
    """`reproduce`'s runs (written to <results>/reproduce.parquet), the configurations retrained and the metric that
    chose them; `summary()` tells per metric whether the original result holds over the new seeds."""

    path: Path
    runs: pd.DataFrame
    chosen: pd.DataFrame
    metric: Metric

    def summary(self) -> pd.DataFrame:
        from hamtune.results.reproduction import KEY_METRICS, summarise

        return summarise(self.runs, self.chosen, tuple(dict.fromkeys((*KEY_METRICS, self.metric.column))))


def reproduce(
    results: str | Path,
    *,
    top: int = 3,
    seeds: int = 5,
    metric: str | None = None,
    data: str | Path | None = None,
    test_data: str | Path | None = None,
    address: str | None = None,
    num_cpus: int | None = None,
    cpus_per_trial: float | None = None,
    gpus_per_trial: float = 0.0,
) -> Reproduction:
    """Retrain a sweep's `top` configurations on their original seed (which must give the original numbers) and
    `seeds` new ones, so a result can be told from a lucky seed."""
    from hamtune.results.layout import REPRODUCE
    from hamtune.sweep.tune.reproduce import ReproduceOptions, run_reproduce

    a = arguments
    directory = _path(results, "results")
    top, seeds, metric = a.integer(top, "top"), a.integer(seeds, "seeds"), a.optional_text(metric, "metric")
    address, num_cpus = a.optional_text(address, "address"), a.optional_integer(num_cpus, "num_cpus")
    cpus_per_trial = a.optional_number(cpus_per_trial, "cpus_per_trial")
    gpus_per_trial = a.number(gpus_per_trial, "gpus_per_trial", finite=False)  # its range: runner.check_resources
    options = ReproduceOptions(
        top=top,
        seeds=seeds,
        metric=metric,
        data=None if data is None else _path(data, "data"),
        test_data=None if test_data is None else _path(test_data, "test_data"),
        address=address,
        num_cpus=num_cpus,
        cpus_per_trial=cpus_per_trial,
        gpus_per_trial=gpus_per_trial,
    )
    runs, chosen, used = run_reproduce(directory, options)
    return Reproduction(directory / REPRODUCE, runs, chosen, used)


# ---- stress test ----------------------------------------------------------------------------------------


@dataclass
class Stress:
    """What `hamtune stress` wrote: stress.parquet in the results folder, and its rows."""

    path: Path
    table: pd.DataFrame


def stress_test(
    results: str | Path,
    *,
    shifts: str | list[str] | tuple[str, ...] | None = None,
    strengths: str | list | tuple | None = None,
    device: str = "auto",
    seed: int = 0,
    labels: Mapping[str, str] | None = None,
) -> Stress:
    """Score the delivered model, the best deep trial and the cheap floor rows of a results folder on its test split
    under acquisition shifts (white balance, brightness, contrast, defocus, JPEG, resolution, vignette, hair; each at
    `strengths` in (0, 1]), with intervals and paired differences; written to <results>/stress.parquet under the
    folder's lock. `labels` renames arguments in errors (the CLI: its flags)."""
    from hamtune.data.shifts import parse_shifts, parse_strengths
    from hamtune.export.stress import check_recorded, plan_stress, run_stress
    from hamtune.paths import results_lock
    from hamtune.results.layout import STRESS
    from hamtune.results.store import write_parquet
    from hamtune.train.loop import resolve_device

    directory = _path(results, "results")
    chosen_shifts = parse_shifts(shifts, _label("shifts", labels))
    chosen_strengths = parse_strengths(strengths, _label("strengths", labels))
    load_results(directory)  # a folder that is not one is named before anything is locked
    target = resolve_device(device)
    with results_lock(directory):
        plan = plan_stress(directory, target)
        table = run_stress(plan, chosen_shifts, chosen_strengths, seed)
        check_recorded(table, plan)
        write_parquet(table, directory / STRESS)
    return Stress(directory / STRESS, table)


# ---- scoring to a file ----------------------------------------------------------------------------------


@dataclass
class ScoreFile:
    """What `write_scores` wrote: the table (also in `out`), the inputs skipped and why, notes, the threshold."""

    out: Path
    table: pd.DataFrame
    threshold: float
    problems: list[tuple[Path, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    maps: Path | None = None


def write_scores(
    model: str | Path,
    *inputs: str | Path,
    out: str | Path = "scores.csv",
    force: bool = False,
    device: str = "auto",
    format: str = "torch",
    maps: str | Path | None = None,
    progress: bool = False,
    labels: Mapping[str, str] | None = None,
) -> ScoreFile:
    """`score`, written to the CSV `out` atomically (as `hamtune score`): a destination that would overwrite the
    bundle, an input or a non-CSV file is refused before anything runs. `labels` renames arguments in errors."""
    from hamtune.escape import spreadsheet_frame
    from hamtune.export.bundle import load_bundle
    from hamtune.export.score import score_inputs
    from hamtune.files import atomic_file
    from hamtune.gate import is_scores_csv, output

    if not inputs:
        raise HamtuneError("hamtune.write_scores(): name at least one image, folder or prepared cache to score")
    labels = arguments.mapping(labels, "labels")
    device, format = _score_arguments(device, format)
    force, progress = arguments.flag(force, _label("force", labels)), arguments.flag(progress, "progress")
    folder, paths, target = _path(model, "model"), [_path(i, "inputs") for i in inputs], _path(out, _label("out", labels))
    into = None if maps is None else _path(maps, "maps")
    output(
        target,
        flag=_label("out", labels),
        kind="file",
        own=is_scores_csv,
        existing="replace",
        reads=[folder, *paths],
        force=force,
        force_flag=_label("force", labels),
    )
    bundle = load_bundle(folder)
    scored = score_inputs(bundle, paths, device=device, progress=progress, format=format, maps=into)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as tmp:
            spreadsheet_frame(scored.table).to_csv(tmp, index=False)  # image/map names come from file names
    except OSError as exc:
        raise HamtuneError(f"{_label('out', labels)} {target}: cannot write the scores ({exc.strerror or exc})") from None
    return ScoreFile(target, scored.table, bundle.threshold, scored.problems, scored.notes, into)


# ---- demo ---------------------------------------------------------------------------------------------


@dataclass
class Demo:
    """The demo's sweep folder, its HTML report, the sweep's seconds and the leaderboards as the report prints them."""

    directory: Path
    html: Path
    seconds: float
    leaderboards: str


def run_demo(
    *,
    space: str | Path | None = None,
    name: str | None = None,
    results: str | Path = "results",
    num_cpus: int | None = None,
    floor: bool = True,
) -> Demo:
    """The main job end to end on the embedded synthetic default (as `hamtune demo`): sweep quick.yaml (or `space`)
    through the same pipeline as `run_sweep` (a confirm stage delivers its ensemble, the floor is scored unless `floor`
    is False or the space says `floor: false`, the choice is recorded), then write the report; shows in a few minutes
    what a real run gives."""
    from hamtune.report.command import run_report
    from hamtune.sweep.space import SHIPPED_DIR

    name, num_cpus = arguments.optional_text(name, "name"), arguments.optional_integer(num_cpus, "num_cpus", 1)
    started = time.perf_counter()
    floor_off: dict[str, Any] = {} if floor else {"floor": False}  # passed only when off, as `--no-floor` is
    directory = run_sweep(
        _path(space, "space") if space is not None else SHIPPED_DIR / "quick.yaml",
        name=name or f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
        results=results,
        num_cpus=num_cpus,
        **floor_off,
    ).directory
    seconds = time.perf_counter() - started
    shown: list[str] = []
    html = run_report([directory], quiet=True, show=shown.append)
    assert html is not None
    return Demo(directory, html, seconds, "\n".join(shown))


# ---- a results folder as an object ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One model of a results folder: its id, its configuration (TrainConfig fields with their declared types; an
    ensemble's are its members'), its metrics, what it is (kind, role, members), its per-epoch history and where its
    checkpoint lies (None where none was kept)."""

    trial_id: str
    config: dict
    metrics: dict
    kind: str | None = None
    role: str = ""
    members: tuple[str, ...] = ()
    history: pd.DataFrame = field(default_factory=pd.DataFrame, repr=False, compare=False)
    checkpoint: Path | None = None
    rule: str = ""  # for the chosen model: how it was chosen (results.chosen)

    @property
    def is_ensemble(self) -> bool:
        return bool(self.members)


class Results:
    """A results folder to work with from a notebook, in the spirit of Ray Tune's ResultGrid and Optuna's Study: its
    tables (one consistent snapshot, taken when opened), the chosen model (`best`, as chosen.json records it), the
    leaderboard, and the report and export of what it holds. It stands for its folder wherever a path is taken."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = _path(directory, "directory")
        self.trials, self.epochs, self.scores = load_results(self.directory)

    def __repr__(self) -> str:
        return f"Results({str(self.directory)!r}, {len(self.trials)} trial(s))"

    def __fspath__(self) -> str:
        return str(self.directory)

    def leaderboard(self, metric: str = "test_auroc", rank_by: str | None = None) -> pd.DataFrame:
        """The trials chosen on validation (or `rank_by`), best first, reporting `metric` with 95% intervals."""
        return rank(self.trials, metric=metric, rank_by=rank_by, scores=self.scores)

    @property
    def best(self) -> Trial:
        """The chosen model (results.chosen: on validation, a confirmed configuration's seed ensemble where one was
        delivered), the one `export()` exports by default; an ensemble carries its members' configuration."""
        from hamtune.results.chosen import chosen_of

        chosen = chosen_of(self.directory)
        if chosen is None:
            raise HamtuneError(f"{self.directory}: no finished trial with a validation value; nothing is chosen")
        found = self.trial(chosen.trial_id)
        return replace(found, config=chosen.config or found.config, members=chosen.members, rule=chosen.rule)

    def trial(self, trial_id: str) -> Trial:
        """One model by id: its typed configuration, metrics, history and checkpoint."""
        from hamtune.config_fields import FIELDS
        from hamtune.paths import in_results
        from hamtune.results.chosen import typed_config

        found = self.trials[self.trials["trial_id"].astype(str) == str(trial_id)]
        if not len(found):
            raise HamtuneError(f"{self.directory}: no trial {trial_id!r}")
        row = found.iloc[0]
        config = {k: v for k, v in typed_config(row).items() if not _missing(v)}
        metrics = {k: v for k, v in row.to_dict().items() if k not in FIELDS and k.startswith(("val_", "test_")) and _number(v)}
        members = tuple(str(row["members"]).split(",")) if isinstance(row.get("members"), str) and row["members"] else ()
        history = (
            self.epochs[self.epochs["trial_id"].astype(str) == str(trial_id)].reset_index(drop=True)
            if "trial_id" in self.epochs.columns
            else pd.DataFrame()
        )
        stored = row.get("checkpoint")
        checkpoint = Path(in_results(stored, self.directory)) if isinstance(stored, str) and stored else None
        kind = row.get("kind") if isinstance(row.get("kind"), str) else None
        return Trial(
            str(trial_id),
            config,
            metrics,
            kind,
            _role(row),
            members,
            history,
            checkpoint if checkpoint is not None and checkpoint.exists() else None,
        )

    def configurations(self, rank_by: str | None = None) -> pd.DataFrame:
        """Configurations over seeds with mean, sd and 95% interval, best mean validation objective first."""
        return configurations(self.directory, rank_by=rank_by)

    def report(self, html: str | Path | None = None, *, metric: str = "test_auroc", rank_by: str | None = None) -> Path:
        """Write the self-contained HTML report (default <folder>/report.html); returns its path."""
        return write_report(self.directory, html=html, metric=metric, rank_by=rank_by)

    def export(self, out: str | Path, **options) -> Path:
        """Export the chosen model (or `rank=`, `trial=`) as a bundle `score` uses; options as `export_model`'s."""
        return export_model(self.directory, out, **options)


def _role(row: pd.Series) -> str:
    from hamtune.results.rank import role

    return str(role(row.to_frame().T).iloc[0])


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(value) -> bool:
    import numbers

    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def open_results(directory: str | Path) -> Results:
    """A results folder (of a sweep, train, baselines or an ensemble) as a `Results` object."""
    return Results(directory)
