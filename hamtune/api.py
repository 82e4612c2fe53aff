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
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from hamtune.errors import HamtuneError, UsageError

if TYPE_CHECKING:
    from hamtune.data.prepare import Prepared
    from hamtune.results.rank import Metric

log = logging.getLogger(__name__)


def _path(value, name: str) -> Path:
    """A path argument as a Path; anything else (None, a number) is a one-line error naming the argument."""
    if isinstance(value, (str, Path)) and str(value):
        return Path(value)
    raise HamtuneError(f"{name} must be a path (str or pathlib.Path), got {value!r}")


def _label(argument: str, labels: Mapping[str, str] | None) -> str:
    """How an error names an argument: the API's keyword, or the flag the CLI passes in `labels` for it."""
    return (labels or {}).get(argument, argument)


def _space(space: str | Path | dict, overrides: dict):
    from hamtune.sweep.space import load_space, parse_space

    if isinstance(space, dict):
        return parse_space({**space, **overrides}, Path(f"{space.get('name', 'space')}.yaml"))
    return load_space(_path(space, "space"), overrides)


def load_space(path: str | Path, **overrides):
    """A validated search-space file (SearchSpace); keyword overrides as `hamtune sweep --set` takes them."""
    from hamtune.sweep.space import load_space as load

    return load(_path(path, "path"), overrides or None)


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
) -> Path:
    """Run (or resume) a sweep of a space file (or the same mapping as a dict); returns its results folder.
    `overrides` (and keywords) are top-level space keys or fixed TrainConfig fields, as `hamtune sweep --set` takes them."""
    from hamtune.sweep.runner import SweepOptions
    from hamtune.sweep.runner import run_sweep as run

    changes = {**(overrides or {}), **more, **({"data": data} if data else {}), **({"test_data": test_data} if test_data else {})}
    chosen = _space(space, changes)
    options = SweepOptions(name=name, results_root=_path(results, "results"), address=address, resume=resume, num_samples=num_samples,
                           num_cpus=num_cpus, log_to=tuple(log_to), keep_checkpoints=keep_checkpoints, storage=storage,
                           gpus_per_trial=gpus_per_trial, runtime_env=dict(runtime_env) if runtime_env else None)
    directory = run(chosen, options)
    after_sweep(directory, options.name or chosen.name, chosen.log_to + options.log_to)
    return directory


def deliver_confirmed(directory: Path, device: str = "auto") -> dict | None:
    """A sweep with a confirm stage delivers its chosen configuration (the best MEAN validation objective over
    2+ seeds) as that configuration's seed ensemble: one more results row, built once (a resumed or repeated
    call finds it). None without a confirm stage or a configuration of 2+ finished seeds."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_lock
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.rank import DEEP_KINDS, ensemble_of, objective

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
        return build(Path(directory), 0, Path(directory).parent, Path(directory).name, device, members=members)[1]


def after_sweep(directory: Path, name: str, trackers: tuple[str, ...]) -> None:
    """What a finished sweep does last: with a confirm stage, deliver the chosen configuration's seed ensemble
    (deliver_confirmed); then hand the trackers the HTML report and the chosen model's bundle (MLflow: to the
    parent run; W&B: a `report` run of the sweep's group)."""
    import tempfile

    deliver_confirmed(directory)
    if not {"mlflow", "wandb"} & set(trackers):
        return
    from hamtune.export.bundle import export_trial
    from hamtune.report.command import run_report
    from hamtune.sweep.trackers import log_artifacts, log_wandb_artifacts

    html = run_report([directory], quiet=True)
    with tempfile.TemporaryDirectory(prefix="hamtune-bundle-") as scratch:
        bundle, _ = export_trial(directory, 1, Path(scratch) / "model")
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
    fuse: str = "auto",
    **settings,
) -> Path:
    """Train one config (a preset and/or TrainConfig fields as keywords) like `hamtune train`; returns its results folder.
    With `seeds` > 1 the config trains on seeds seed..seed+N-1 and their seed ensemble is delivered as one more row."""
    from hamtune.train.config import build_config

    config = build_config({"preset": preset, **settings}, where="hamtune.train()")
    return train_seeds(config, data, test_data=test_data, results=_path(results, "results"), name=name, progress=progress,
                       seeds=seeds, fuse=fuse).directory


@dataclass
class Trained:
    """What `hamtune train` trained: each seed's run and row, and the seed ensemble's row when there are 2+ seeds."""

    directory: Path
    data_name: str
    runs: list
    ensemble: dict | None


def train_seeds(config, data: str, *, test_data: str | None = None, results: Path = Path("results"), name: str | None = None,
                progress: bool = True, seeds: int = 1, fuse: str = "auto", skip_missing: bool = False) -> Trained:
    """Train `config` on `seeds` seeds (one results row each) under the results folder's lock; with 2+ completed
    seeds, their ensemble (scores standardised on validation normals, averaged) is the delivered model's row."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_folder, results_lock
    from hamtune.train.single import load_data, run_seeds_and_record

    name = name or config.preset or "train"
    directory = results_folder(Path(results), name)
    with results_lock(directory):
        prepared, config = load_data(data, config, progress=progress, skip_missing=skip_missing)
        external = load_data(test_data, config, progress=progress)[0] if test_data else None
        runs = run_seeds_and_record(config, seeds, prepared, directory, name, test_data=external, progress=progress, fuse=fuse)
        finished = [row["trial_id"] for result, row in runs if result.status == "completed"]
        ensemble = None
        if seeds > 1 and len(finished) >= 2:
            ensemble = build(directory, 0, directory.parent, directory.name, config.device if config.device != "auto" else "cpu",
                                      members=finished)[1]
    return Trained(directory, prepared.name, runs, ensemble)


def load_results(directory: str | Path) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """trials, epochs and scores of a results folder (one consistent snapshot, even while a sweep writes it)."""
    from hamtune.results.store import load_results as load

    return load(_path(directory, "directory"))


def rank(results: str | Path | pd.DataFrame, *, metric: str = "test_auroc", rank_by: str | None = None,
         scores: pd.DataFrame | None = None) -> pd.DataFrame:
    """The leaderboard the report prints: trials chosen on the sweep's validation objective (or `rank_by`),
    best first with a 1-based `rank`, reporting `metric`, with the `floor` flag and 95% bootstrap intervals of
    test AUROC/AUPRC (`test_auroc_low`...) from the per-image scores. Takes a results folder, or its trials
    frame (and `scores`, its per-image scores, for the intervals)."""
    from hamtune.results.intervals import with_intervals
    from hamtune.results.rank import objective, resolve_metric
    from hamtune.results.rank import rank as ranking

    if isinstance(results, pd.DataFrame):
        trials = results
    else:
        trials, _, scores = load_results(results)
    select = resolve_metric(rank_by, trials) if rank_by else objective(trials)
    board = next(iter(ranking(trials, resolve_metric(metric, trials), select).boards.values()))
    return with_intervals(board, scores) if scores is not None else board


def configurations(results: str | Path | pd.DataFrame, *, rank_by: str | None = None) -> pd.DataFrame:
    """Configurations over seeds (the confirm stage's and `reproduce`'s seeds included): one row per configuration
    with n seeds and the mean, sd and 95% interval of its validation and test metrics, best mean validation
    objective first (configurations with 2+ seeds ahead). Takes a results folder or its trials frame."""
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.rank import objective, resolve_metric
    from hamtune.results.reproduction import REPRODUCE
    from hamtune.results.store import read_parquet

    reproduced = None
    if isinstance(results, pd.DataFrame):
        trials = results
    else:
        trials = load_results(results)[0]
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
    out = run_report([_path(r, "results") for r in results], metric=metric, rank_by=rank_by,
                     html=_path(html, "html") if html is not None else None)
    assert out is not None
    return out


def make_report(results: list[str | Path] | None = None, *, metric: str = "test_auroc", rank_by: str | None = None, top: int = 10,
           by: str | None = None, html: str | Path | None = None, no_html: bool = False, output_format: str = "table",
           show: Callable[[str], None] | None = None) -> Path | None:
    """What `hamtune report` does, with each of its options: the HTML report of `results` (default: every results
    folder under ./results) and, through `show`, the leaderboards (or methods cards) as text in `output_format`;
    returns the HTML's path (None with no_html or a methods format). `write_report` is the short form."""
    from hamtune.report.command import run_report

    folders = None if results is None else [_path(r, "results") for r in results]
    return run_report(folders, metric=metric, rank_by=rank_by, top=top, by=by,
                      html=None if html is None else _path(html, "html"), no_html=no_html, output_format=output_format, show=show)


@dataclass
class Exported:
    """An exported bundle: its folder, the results row of the trial in it (with its `rank`) and its programs."""

    directory: Path
    row: pd.Series
    programs: list[Path]


def export_trial(results: str | Path, out: str | Path, *, rank: int = 1, metric: str | None = None, force: bool = False,
                 formats: tuple[str, ...] = ("torch",), trial: str | None = None) -> Exported:
    """`export_model` with what the command reports about it: which trial was exported and its portable programs."""
    from hamtune.export.bundle import PROGRAMS
    from hamtune.export.bundle import export_trial as export
    from hamtune.export.programs import programs_wanted

    folder, row = export(_path(results, "results"), rank, _path(out, "out"), metric, force, formats, trial)
    return Exported(folder, row, [folder / PROGRAMS[f] for f in programs_wanted(formats)])


def export_model(results: str | Path, out: str | Path, *, rank: int = 1, metric: str | None = None, force: bool = False,
           formats: tuple[str, ...] = ("torch",), trial: str | None = None) -> Path:
    """Export the trial ranked `rank` (by the sweep's validation objective, or `metric`), or the trial `trial`, as a
    bundle that `score` uses; `formats` adds portable programs beside the weights ("onnx", "torch-export")."""
    from hamtune.export.bundle import export_trial

    folder, _ = export_trial(_path(results, "results"), rank, _path(out, "out"), metric, force, formats, trial)
    return folder


def score(model: str | Path, *inputs: str | Path, device: str = "auto", format: str = "torch",
          maps: str | Path | None = None) -> pd.DataFrame:
    """Score images (files, folders or a prepared cache) with an exported bundle: image, score, flagged (score > the
    threshold chosen on validation), exactly as `hamtune score` writes them; with `maps`, each image's anomaly map
    written there as <map>.npy and <map>.png (column `map`)."""
    from hamtune.export.bundle import load_bundle
    from hamtune.export.score import score_inputs

    if not inputs:
        raise HamtuneError("hamtune.score(): name at least one image, folder or prepared cache to score")
    bundle = load_bundle(_path(model, "model"))
    return score_inputs(bundle, [_path(i, "inputs") for i in inputs], device=device, progress=False, format=format,
                        maps=None if maps is None else _path(maps, "maps")).table


# ---- data ---------------------------------------------------------------------------------------------


def synthesize_data(out: str | Path, *, n: int = 2000, seed: int = 0, image_size: tuple[int, int] = (600, 450),
                    workers: int | None = None, progress: bool = True) -> Path:
    """Write a synthetic HAM-like dataset in the original release's layout (as `hamtune data synth`), so everything
    runs without the real data; returns `out` (at once when it already holds these settings)."""
    from hamtune.data.synth import synthesize_release

    return synthesize_release(_path(out, "out"), n=n, seed=seed, image_size=image_size, workers=workers, progress=progress)


def data_info(cache: str | Path) -> dict:
    """A prepared cache's manifest, its contents verified against it first (as `hamtune data info`)."""
    from hamtune.data.prepare import load_prepared

    return load_prepared(_path(cache, "cache")).manifest


def prepare_data(source: str | Path, *, size: int | None = None, crop: str = "center", channels: int = 3,
                 out: str | Path | None = None, workers: int | None = None, skip_missing: bool = False,
                 metadata: str | Path | None = None, force: bool = False, progress: bool = True) -> Prepared:
    """Decode any HAM10000 form into a cache (as `hamtune data prepare`; a re-run is a cache hit) and open it, so
    training, sweeps and baselines read decoded arrays instead of JPEGs; `.path` and `.manifest` describe it."""
    from hamtune.data.prepare import load_prepared, prepare

    folder = prepare(_path(source, "source"), size=size, crop=crop, channels=channels,
                     out=None if out is None else _path(out, "out"), workers=workers, skip_missing=skip_missing,
                     metadata=None if metadata is None else _path(metadata, "metadata"), force=force, progress=progress)
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


def run_baselines(data: str | Path, *, methods: str | list[str] | tuple[str, ...] | None = None, protocol: str | None = None,
                  test_data: str | Path | None = None, name: str = "baselines", results: str | Path = "results",
                  settings: Mapping[str, object] | None = None, labels: Mapping[str, str] | None = None,
                  **more) -> Baselines:
    """Fit the classical baselines (PCA, blur, down/up-sampling, IsolationForest, k-NN) on exactly the deep models'
    splits, so a sweep's leaderboard shows what a network adds. `settings` (and keywords) are the split's
    TrainConfig fields (split_seed, max_train_images...), as `--set` takes them; the arguments are checked before
    anything is created, the data is loaded under the results folder's lock. `labels` renames arguments in error
    messages (the CLI: its flags)."""
    from hamtune.baselines import DEFAULT_METHODS, parse_methods
    from hamtune.baselines import run_baselines as run
    from hamtune.baselines.run import DATA_KEYS
    from hamtune.paths import results_folder, results_lock
    from hamtune.train.config import build_config
    from hamtune.train.single import load_data

    where = _label("settings", labels)
    settings = {**(settings or {}), **more}
    unused = sorted(set(settings) - set(DATA_KEYS))
    if unused:
        raise UsageError(f"{where} {', '.join(unused)}: not used by classical baselines (they fit no network); "
                         f"they take {', '.join(DATA_KEYS)}")
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
    return Baselines(directory, prepared.name, config.protocol, rows, time.perf_counter() - started)


# ---- ensemble, reproduce --------------------------------------------------------------------------------


@dataclass
class Ensemble:
    """An ensemble recorded as a one-row results folder: `row` has its members, metrics and threshold."""

    directory: Path
    row: dict


def build_ensemble(results: str | Path, *, top: int = 3, name: str | None = None, root: str | Path = "results",
                   device: str = "auto") -> Ensemble:
    """Combine the `top` trials of a results folder chosen on validation into one detector (each member's score
    standardised on validation normals, averaged) and record it in root/<name> (default <sweep>-ensemble), which
    `export_model` then exports like any trial."""
    from hamtune.export.ensemble import build_ensemble as build
    from hamtune.paths import results_folder, results_lock

    source = _path(results, "results")
    load_results(source)  # a folder that is not one is named before anything is created
    directory = results_folder(_path(root, "root"), name or f"{source.resolve().name}-ensemble")
    with results_lock(directory):
        out, row = build(source, top, directory.parent, directory.name, device)
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


def reproduce(results: str | Path, *, top: int = 3, seeds: int = 5, metric: str | None = None,
              data: str | Path | None = None, test_data: str | Path | None = None, address: str | None = None,
              num_cpus: int | None = None, cpus_per_trial: float | None = None, gpus_per_trial: float = 0.0) -> Reproduction:
    """Retrain a sweep's `top` configurations on their original seed (which must give the original numbers) and
    `seeds` new ones, so a result can be told from a lucky seed."""
    from hamtune.results.reproduction import REPRODUCE
    from hamtune.sweep.reproduce import ReproduceOptions, run_reproduce

    directory = _path(results, "results")
    options = ReproduceOptions(top=top, seeds=seeds, metric=metric, data=None if data is None else _path(data, "data"),
                               test_data=None if test_data is None else _path(test_data, "test_data"), address=address,
                               num_cpus=num_cpus, cpus_per_trial=cpus_per_trial, gpus_per_trial=gpus_per_trial)
    runs, chosen, used = run_reproduce(directory, options)
    return Reproduction(directory / REPRODUCE, runs, chosen, used)


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


def _check_score_out(out: Path, model: Path, inputs: list[Path], force: bool, labels: Mapping[str, str] | None) -> None:
    """Refuse an `out` that would destroy data: inside the bundle, one of the inputs or inside an input folder, or an
    existing file that is not a CSV (without `force`)."""
    name = _label("out", labels)
    if out.is_dir():
        raise UsageError(f"{name} {out} is a folder; give the CSV file to write, e.g. {out / 'scores.csv'}")
    target = out.resolve()
    for folder, what in [(model, "the bundle"), *((i, "an input") for i in inputs)]:
        folder = folder.resolve()
        if target == folder or folder in target.parents:
            raise UsageError(f"{name} {out} is inside {what} {folder}; write the scores elsewhere (nothing was written)")
    if out.exists() and out.suffix.lower() != ".csv" and not force:
        raise UsageError(f"{name} {out} exists and is not a .csv file; choose another {name}, or pass "
                         f"{(labels or {}).get('force', 'force=True')} to replace it (nothing was written)")


def _check_maps_out(maps: Path, model: Path, labels: Mapping[str, str] | None) -> None:
    """`maps` is a folder outside the bundle (whose files are sealed by their digests)."""
    name = _label("maps", labels)
    target, folder = maps.resolve(), model.resolve()
    if target == folder or folder in target.parents:
        raise UsageError(f"{name} {maps} is inside the bundle {model}; write the maps elsewhere (nothing was written)")
    if maps.exists() and not maps.is_dir():
        raise UsageError(f"{name} {maps} exists and is not a folder; choose another {name} (nothing was written)")


def write_scores(model: str | Path, *inputs: str | Path, out: str | Path = "scores.csv", force: bool = False,
                 device: str = "auto", format: str = "torch", maps: str | Path | None = None, progress: bool = False,
                 labels: Mapping[str, str] | None = None) -> ScoreFile:
    """`score`, written to the CSV `out` atomically (as `hamtune score`): a destination that would overwrite the
    bundle, an input or a non-CSV file is refused before anything runs. `labels` renames arguments in errors."""
    from hamtune.export.bundle import load_bundle
    from hamtune.export.score import score_inputs
    from hamtune.files import atomic_file

    if not inputs:
        raise HamtuneError("hamtune.write_scores(): name at least one image, folder or prepared cache to score")
    folder, paths, target = _path(model, "model"), [_path(i, "inputs") for i in inputs], _path(out, "out")
    into = None if maps is None else _path(maps, "maps")
    _check_score_out(target, folder, paths, force, labels)
    if into is not None:
        _check_maps_out(into, folder, labels)
    bundle = load_bundle(folder)
    scored = score_inputs(bundle, paths, device=device, progress=progress, format=format, maps=into)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(target) as tmp:
            scored.table.to_csv(tmp, index=False)
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


def run_demo(*, space: str | Path | None = None, name: str | None = None, results: str | Path = "results",
             num_cpus: int | None = None) -> Demo:
    """The main job end to end on the embedded synthetic default (as `hamtune demo`): sweep quick.yaml (or `space`),
    then write the report; shows in a few minutes what a real run gives."""
    from hamtune.report.command import run_report
    from hamtune.sweep.runner import SweepOptions
    from hamtune.sweep.runner import run_sweep as run
    from hamtune.sweep.space import SHIPPED_DIR
    from hamtune.sweep.space import load_space as load

    started = time.perf_counter()
    chosen = load(_path(space, "space") if space is not None else SHIPPED_DIR / "quick.yaml")
    directory = run(chosen, SweepOptions(name=name or f"demo-{time.strftime('%Y%m%d-%H%M%S')}",
                                         results_root=_path(results, "results"), num_cpus=num_cpus))
    seconds = time.perf_counter() - started
    shown: list[str] = []
    html = run_report([directory], quiet=True, show=shown.append)
    assert html is not None
    return Demo(directory, html, seconds, "\n".join(shown))


# ---- a results folder as an object ------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    """One trial of a results folder: its id, its configuration (TrainConfig fields) and its metrics."""

    trial_id: str
    config: dict
    metrics: dict


class Results:
    """A results folder to work with from a notebook, in the spirit of Ray Tune's ResultGrid and Optuna's Study: its
    tables (one consistent snapshot, taken when opened), the trial chosen on validation, the leaderboard, and the
    report and export of what it holds."""

    def __init__(self, directory: str | Path) -> None:
        self.directory = _path(directory, "directory")
        self.trials, self.epochs, self.scores = load_results(self.directory)

    def __repr__(self) -> str:
        return f"Results({str(self.directory)!r}, {len(self.trials)} trial(s))"

    def leaderboard(self, metric: str = "test_auroc", rank_by: str | None = None) -> pd.DataFrame:
        """The trials chosen on validation (or `rank_by`), best first, reporting `metric` with 95% intervals."""
        return rank(self.trials, metric=metric, rank_by=rank_by, scores=self.scores)

    @property
    def best(self) -> Trial:
        """The trial the sweep's validation objective chooses (the one `export()` exports by default)."""
        return self.trial(str(self.leaderboard()["trial_id"].iloc[0]))

    def trial(self, trial_id: str) -> Trial:
        """One trial by id, its configuration and metrics split apart."""
        from dataclasses import fields

        from hamtune.train.config import TrainConfig

        found = self.trials[self.trials["trial_id"].astype(str) == str(trial_id)]
        if not len(found):
            raise HamtuneError(f"{self.directory}: no trial {trial_id!r}")
        row = found.iloc[0].to_dict()
        keys = {f.name for f in fields(TrainConfig)}
        config = {k: v for k, v in row.items() if k in keys and not _missing(v)}
        metrics = {k: v for k, v in row.items() if k not in keys and k.startswith(("val_", "test_")) and _number(v)}
        return Trial(str(trial_id), config, metrics)

    def configurations(self, rank_by: str | None = None) -> pd.DataFrame:
        """Configurations over seeds with mean, sd and 95% interval, best mean validation objective first."""
        return configurations(self.directory, rank_by=rank_by)

    def report(self, html: str | Path | None = None, *, metric: str = "test_auroc", rank_by: str | None = None) -> Path:
        """Write the self-contained HTML report (default <folder>/report.html); returns its path."""
        return write_report(self.directory, html=html, metric=metric, rank_by=rank_by)

    def export(self, out: str | Path, **options) -> Path:
        """Export the best trial (or `rank=`, `trial=`) as a bundle `score` uses; options as `export_model`'s."""
        return export_model(self.directory, out, **options)


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def _number(value) -> bool:
    import numbers

    return isinstance(value, numbers.Number) and not isinstance(value, bool)


def open_results(directory: str | Path) -> Results:
    """A results folder (of a sweep, train, baselines or an ensemble) as a `Results` object."""
    return Results(directory)
