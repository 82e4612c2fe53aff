"""hamtune's Python API: what the `hamtune` command does, as functions a notebook calls.

Each function takes plain values (paths, dicts, keyword settings), does exactly what its command
does (same validation, same results layout, same one-line `HamtuneError` on a problem) and returns
something to keep working with: a results folder, a DataFrame, a bundle path. Re-exported lazily by
`hamtune/__init__.py`, so `import hamtune` stays cheap and torch, Ray and pandas load on first use.
The names differ from the commands where a command's name is a subpackage's (hamtune.sweep, .train,
.report, .export): Python binds a subpackage to its name on the package once it is imported, so a
function called `hamtune.train` would turn into a module under a notebook's feet.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from hamtune.errors import HamtuneError


def _path(value, name: str) -> Path:
    """A path argument as a Path; anything else (None, a number) is a one-line error naming the argument."""
    if isinstance(value, (str, Path)) and str(value):
        return Path(value)
    raise HamtuneError(f"{name} must be a path (str or pathlib.Path), got {value!r}")


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
    **overrides,
) -> Path:
    """Run (or resume) a sweep of a space file (or the same mapping as a dict); returns its results folder.
    Keyword overrides are top-level space keys or fixed TrainConfig fields, as `hamtune sweep --set` takes them."""
    from hamtune.sweep.runner import SweepOptions
    from hamtune.sweep.runner import run_sweep as run

    changes = {**overrides, **({"data": data} if data else {}), **({"test_data": test_data} if test_data else {})}
    options = SweepOptions(name=name, results_root=_path(results, "results"), address=address, resume=resume, num_samples=num_samples,
                           num_cpus=num_cpus, log_to=tuple(log_to), keep_checkpoints=keep_checkpoints)
    chosen = _space(space, changes)
    directory = run(chosen, options)
    after_sweep(directory, options.name or chosen.name, chosen.log_to + options.log_to)
    return directory


def deliver_confirmed(directory: Path, device: str = "auto") -> dict | None:
    """A sweep with a confirm stage delivers its chosen configuration (the best MEAN validation objective over
    2+ seeds) as that configuration's seed ensemble: one more results row, built once (a resumed or repeated
    call finds it). None without a confirm stage or a configuration of 2+ finished seeds."""
    from hamtune.export.ensemble import build_ensemble
    from hamtune.paths import results_lock
    from hamtune.results.configurations import per_configuration, seed_rows
    from hamtune.results.rank import DEEP_KINDS, objective

    trials = load_results(directory)[0]
    if "stage" not in trials.columns or not (trials["stage"] == "confirm").any():
        return None
    seeds = seed_rows(trials[trials["kind"].isin(DEEP_KINDS)])
    table = per_configuration(seeds, objective(trials))
    confirmed = table[table["n"] >= 2]
    if not len(confirmed):
        return None
    members = sorted(seeds.loc[seeds["config_id"] == confirmed["config_id"].iloc[0], "trial_id"].astype(str))
    if "members" in trials.columns:
        for _, row in trials[trials["members"].notna()].iterrows():
            if sorted(str(row["members"]).split(",")) == members:
                return row.to_dict()
    with results_lock(Path(directory)):
        return build_ensemble(Path(directory), 0, Path(directory).parent, Path(directory).name, device, members=members)[1]


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
    from hamtune.export.ensemble import build_ensemble
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
            ensemble = build_ensemble(directory, 0, directory.parent, directory.name, config.device if config.device != "auto" else "cpu",
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


def export_model(results: str | Path, out: str | Path, *, rank: int = 1, metric: str | None = None, force: bool = False,
           formats: tuple[str, ...] = ("torch",), trial: str | None = None) -> Path:
    """Export the trial ranked `rank` (by the sweep's validation objective, or `metric`), or the trial `trial`, as a
    bundle that `score` uses; `formats` adds portable programs beside the weights ("onnx", "torch-export")."""
    from hamtune.export.bundle import export_trial

    folder, _ = export_trial(_path(results, "results"), rank, _path(out, "out"), metric, force, formats, trial)
    return folder


def score(model: str | Path, *inputs: str | Path, device: str = "cpu", format: str = "torch",
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
