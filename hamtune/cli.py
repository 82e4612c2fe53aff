"""The `hamtune` command: parses arguments and calls the modules that do the work."""

from __future__ import annotations

import argparse
import errno
import json
import logging
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from hamtune import __version__
from hamtune.errors import HamtuneError, one_line
from hamtune.export import FORMATS
from hamtune.sweep.space import SHIPPED_DIR, TRACKERS
from hamtune.train.config import CHOICES, PRESETS

if TYPE_CHECKING:
    from hamtune.api import ScoreFile

log = logging.getLogger("hamtune")


class Console(logging.Handler):
    """What hamtune's modules log below WARNING, on stderr: progress is not a result, so stdout carries only what a
    command prints (results, tables, CSV) and can be piped. INFO lines plain (after `hamtune: ` when the record
    carries stderr=True, as notes are), DEBUG as `hamtune: DEBUG: ...`. WARNING and up go to the root handler, as
    any library's. The stream is looked up on each record, so a redirected sys.stderr (pytest's capsys) is honoured."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.WARNING:
            return
        try:
            message = record.getMessage()
            if record.levelno == logging.INFO and not getattr(record, "stderr", False):
                print(message, file=sys.stderr, flush=True)
            elif record.levelno == logging.INFO:
                print(f"hamtune: {message}", file=sys.stderr, flush=True)
            else:
                print(f"hamtune: {record.levelname}: {message}", file=sys.stderr, flush=True)
        except Exception:
            self.handleError(record)


def below_warning_from_hamtune(record: logging.LogRecord) -> bool:
    """Console shows these; the root handler must not show them a second time."""
    return record.levelno < logging.WARNING and (record.name == "hamtune" or record.name.startswith("hamtune."))


@contextmanager
def console_logging(verbosity: int) -> Iterator[None]:
    """Only the command configures logging, and only while it runs: the `hamtune` loggers reach the terminal from
    INFO (DEBUG with -v, WARNING with -q), other libraries' from WARNING (INFO with -v) through a root handler added
    where there is none, as logging.basicConfig would. The process's logging is as it was afterwards."""
    root = logging.getLogger()
    added = None
    saved_root_level, saved_level = root.level, log.level
    if not root.handlers:
        added = logging.StreamHandler()
        added.setFormatter(logging.Formatter("hamtune: %(levelname)s: %(message)s"))
        added.addFilter(lambda record: not below_warning_from_hamtune(record))
        root.addHandler(added)
        root.setLevel(logging.INFO if verbosity > 0 else logging.WARNING)
    log.setLevel({-1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}[verbosity])
    console = Console()
    log.addHandler(console)
    try:
        yield
    finally:
        log.removeHandler(console)
        log.setLevel(saved_level)
        root.setLevel(saved_root_level)
        if added is not None:
            root.removeHandler(added)


def print_metrics(metrics: dict, keys: tuple[str, ...]) -> None:
    from hamtune.results.numbers import fmt

    rows = [(k, fmt(metrics[k], missing="nan")) for k in keys if k in metrics]
    width = max(len(k) for k, _ in rows) if rows else 0
    for key, value in rows:
        print(f"  {key:<{width}}  {value}")


# ---- data -----------------------------------------------------------------------------------------


def cmd_data_synth(args: argparse.Namespace) -> None:
    from hamtune.api import synthesize_data

    width, height = args.image_size
    started = time.perf_counter()
    out = synthesize_data(args.out, n=args.n, seed=args.seed, image_size=(width, height), workers=args.workers)
    print(f"synthetic HAM-like dataset ({args.n} images, {width}x{height}) in {out} ({time.perf_counter() - started:.1f} s)")


def cmd_data_prepare(args: argparse.Namespace) -> None:
    from hamtune.api import prepare_data

    started = time.perf_counter()
    prepared = prepare_data(
        args.src,
        size=args.size,
        crop=args.crop,
        channels=args.channels,
        out=args.out,
        workers=args.workers,
        skip_missing=args.skip_missing,
        metadata=args.metadata,
        force=args.force,
    )
    manifest = prepared.manifest
    print(f"prepared {manifest['count']} images ({manifest['form']}, {manifest['mapping']}) in {time.perf_counter() - started:.2f} s")
    print(f"  cache: {prepared.path}")
    print(f"  classes: {', '.join(f'{k} {v}' for k, v in manifest['counts'].items() if v)}")
    print(f"  fingerprint: {manifest['fingerprint']}")


def cmd_data_info(args: argparse.Namespace) -> None:
    from hamtune.api import data_info

    print(json.dumps(data_info(args.cache), indent=2))


# ---- train ----------------------------------------------------------------------------------------


def cmd_train(args: argparse.Namespace) -> None:
    from hamtune.api import train_seeds
    from hamtune.train.config import build_config, parse_assignments
    from hamtune.train.single import SUMMARY

    device = {"device": args.device} if args.device else {}
    config = build_config({"preset": args.preset, **device, **parse_assignments(args.set)})
    trained = train_seeds(
        config,
        args.data,
        test_data=args.test_data,
        results=Path(args.results),
        name=args.name,
        seeds=args.seeds,
        keep=args.keep,
        fuse=args.fuse,
        skip_missing=args.skip_missing,
    )
    for result, row in trained.runs:
        seed = f" seed {result.config.seed}" if args.seeds > 1 else ""
        print(
            f"{config.kind.upper()} {config.arch}{seed} on {trained.data_name}: {result.status} after {len(result.history)} "
            f"epoch(s) in {result.wall_time_s:.1f} s on {result.device}" + (f" ({result.reason})" if result.reason else "")
        )
        print_metrics(result.final, SUMMARY)
        print(f"results: {trained.directory} (trial {row['trial_id']})")
    if trained.ensemble is not None:
        row = trained.ensemble
        print(
            f"seed ensemble of {row['members'].count(',') + 1} seeds"
            + (f" (the {args.keep} of {args.seeds} best on validation)" if args.keep and args.keep < args.seeds else "")
            + f" (the delivered model): val_auroc {row['val_auroc']:.4f}  "
            f"test_auroc {row['test_auroc']:.4f}  test_auprc {row['test_auprc']:.4f}  test_f1 {row['test_f1']:.4f}"
        )
        print(
            f"results: {trained.directory} (trial {row['trial_id']}); export: hamtune export {trained.directory} --trial "
            f"{row['trial_id']} --out models/{trained.directory.name}"
        )


# ---- baselines ------------------------------------------------------------------------------------


def cmd_baselines(args: argparse.Namespace) -> None:
    from hamtune.api import run_baselines
    from hamtune.results.numbers import fmt
    from hamtune.train.config import parse_assignments

    done = run_baselines(
        args.data,
        methods=args.methods,
        protocol=args.protocol,
        test_data=args.test_data,
        name=args.name,
        results=args.results,
        settings=parse_assignments(args.set),
        labels={"settings": "--set", "name": "--name"},
    )
    rows = done.rows
    print(
        f"{len(rows)} classical baseline(s) on {done.data_name}, protocol {done.protocol}, "
        f"{rows[0]['train_images']} normal training images, in {done.seconds:.1f} s"
    )
    width = max(len(row["model"]) for row in rows)
    for row in rows:
        keys = [key for key in ("test_auroc", "test_auprc", "test_f1", "val_auroc") if key in row]
        shown = "  ".join(f"{key} {fmt(row[key], missing='nan')}" for key in keys)
        setting = f"  ({row['baseline_setting']}, chosen on validation)" if row.get("baseline_setting") else ""
        print(f"  {row['model']:<{width}}  {shown}{setting}")
    print(f"results: {done.directory}")
    print(f"report:  python -m hamtune.report {done.directory} <sweep results>")


# ---- sweep ----------------------------------------------------------------------------------------


def _yaml_scalar(text: str):
    """A --set value for a space key, read as YAML would read it (8 -> int); unparsable text stays text."""
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError:
        return text


def cmd_sweep(args: argparse.Namespace) -> None:
    from hamtune.api import run_sweep
    from hamtune.sweep.cluster import read_runtime_env
    from hamtune.sweep.space import TOP_LEVEL
    from hamtune.train.config import parse_assignments

    overrides = {key: _yaml_scalar(value) if key in TOP_LEVEL else value for key, value in parse_assignments(args.set).items()}
    if args.confirm_top is not None or args.confirm_seeds is not None:
        overrides["confirm"] = {
            "top": 3 if args.confirm_top is None else args.confirm_top,
            "seeds": 5 if args.confirm_seeds is None else args.confirm_seeds,
        }
    if args.no_floor:
        overrides["floor"] = False
    if args.runtime_env is not None:
        args.runtime_env = read_runtime_env(args.runtime_env)
    done = run_sweep(
        args.space,
        name=args.name,
        results=args.results,
        data=args.data,
        test_data=args.test_data,
        num_samples=args.num_samples,
        address=args.address,
        resume=args.resume,
        num_cpus=args.num_cpus,
        log_to=tuple(args.log_to or ()),
        keep_checkpoints=args.keep_checkpoints,
        storage=args.storage,
        gpus_per_trial=args.gpus_per_trial,
        overrides=overrides,
        runtime_env=args.runtime_env,
    )
    print(f"results: {done.directory}")
    print(f"report:  python -m hamtune.report {done.directory}")


def cmd_cluster_stop(args: argparse.Namespace) -> None:
    from hamtune.sweep.tune.cluster import stop_cluster

    ended = stop_cluster(args.temp_dir, grace_s=args.grace)
    print(f"ended {ended} Ray process(es) started with --temp-dir={args.temp_dir}")


# ---- report ---------------------------------------------------------------------------------------


def show(text: str) -> None:
    """The leaderboards and methods cards the report renders, on stdout."""
    print(text, flush=True)


def cmd_report(args: argparse.Namespace) -> None:
    from hamtune.api import make_report

    make_report(
        args.results_dirs,
        metric=args.metric,
        rank_by=args.rank_by,
        top=args.top,
        by=args.by,
        html=args.html,
        no_html=args.no_html,
        output_format=args.format,
        show=show,
    )


# ---- reproduce, export, score ---------------------------------------------------------------------


def cmd_reproduce(args: argparse.Namespace) -> None:
    from hamtune.api import reproduce
    from hamtune.results.reproduction import format_summary

    done = reproduce(
        args.results_dir,
        top=args.top,
        seeds=args.seeds,
        metric=args.metric,
        data=args.data,
        test_data=args.test_data,
        address=args.address,
        num_cpus=args.num_cpus,
        cpus_per_trial=args.cpus_per_trial,
        gpus_per_trial=args.gpus_per_trial,
    )
    print()
    print(format_summary(done.summary(), done.chosen, done.metric))
    print(f"runs: {Path(args.results_dir) / done.path.name}")


def cmd_export(args: argparse.Namespace) -> None:
    from hamtune.api import export_trial

    formats = tuple(args.format or ("torch",))
    done = export_trial(args.results_dir, args.out, rank=args.rank, metric=args.metric, force=args.force, formats=formats, trial=args.trial)
    out, row = done.directory, done.row
    print(f"exported trial {row['trial_id']} (rank {int(row['rank'])}, {row.get('kind')}/{row.get('arch')}) to {out}")
    for program in done.programs:
        print(f"  program: {program} (hamtune score {out} IMAGES... --format {'onnx' if program.suffix == '.onnx' else 'torch-export'})")
    if "onnx" in formats:
        print(f"  score graph: {out / 'score.onnx'} (uint8 images in, anomaly score out; no hamtune needed: docs/integrations.md)")
    print(f"  model card: {out / 'MODEL_CARD.md'}")
    print(f"  score images: hamtune score {out} IMAGES... --out scores.csv")


def cmd_ensemble(args: argparse.Namespace) -> None:
    from hamtune.api import build_ensemble

    done = build_ensemble(args.results_dir, top=args.top, name=args.name, root=args.results, device=args.device)
    out, row = done.directory, done.row
    print(f"ensemble of {row['members'].count(',') + 1} trial(s) ranked by {row['objective_metric']} on validation: {row['members']}")
    print(
        f"  val_auroc {row['val_auroc']:.4f}  test_auroc {row['test_auroc']:.4f}  test_auprc {row['test_auprc']:.4f}  "
        f"test_f1 {row['test_f1']:.4f}"
    )
    print(f"  results: {out}  (compare: python -m hamtune.report {args.results_dir} {out})")
    print(f"  export:  hamtune export {out} --out models/ensemble")


def report_problems(scored: ScoreFile) -> None:
    """One line per skipped input on stderr, then the count, then the notes."""
    from hamtune.errors import first_line

    for path, reason in scored.problems:
        print(f"hamtune: skipped {one_line(path)}: {one_line(first_line(reason, 200))}", file=sys.stderr)
    if scored.problems:
        print(f"hamtune: {len(scored.problems)} input(s) could not be read and were skipped", file=sys.stderr)
    for note in scored.notes:
        print(f"hamtune: note: {note}", file=sys.stderr)


def cmd_score(args: argparse.Namespace) -> None:
    from hamtune.api import write_scores

    scored = write_scores(
        args.model,
        *args.inputs,
        out=args.out,
        force=args.force,
        device=args.device,
        format=args.format,
        maps=args.maps,
        progress=not args.no_progress,
        labels={"out": "--out", "maps": "--maps", "force": "--force"},
    )
    report_problems(scored)
    flagged = int(scored.table["flagged"].sum())
    print(f"scored {len(scored.table)} image(s), {flagged} flagged (score > {scored.threshold:.6g}): {args.out}")
    if args.maps is not None:
        print(
            f"anomaly maps: {args.maps} (<image>.npy the map, <image>.png image | reconstruction | map, "
            "each coloured over its own range; column 'map')"
        )


def cmd_verify(args: argparse.Namespace) -> None:
    from hamtune.api import verify

    done = verify(args.model, program=args.program, device=args.device)
    print(
        f"verified {done.count} golden vector(s) of {done.path} with {', '.join(done.programs)}: largest error "
        f"{done.max_error:.3g} (relative; absolute below 1)"
    )


def cmd_stress(args: argparse.Namespace) -> None:
    from hamtune.api import stress_test
    from hamtune.export.stress import format_stress

    done = stress_test(
        args.results_dir,
        shifts=args.shifts,
        strengths=args.strengths,
        device=args.device,
        seed=args.seed,
        labels={"shifts": "--shifts", "strengths": "--strengths"},
    )
    table = done.table
    print(
        f"stress test of {table['model'].nunique()} model(s) on {table['images'].iloc[0]} test images "
        f"({table['anomalous'].iloc[0]} anomalous) at the model's input size {table['input'].iloc[0]}; AUROC [95% bootstrap], "
        "change from unshifted and lead over the floor as paired differences [95%]"
    )
    print(format_stress(table))
    print(f"results: {done.path}")


# ---- demo -----------------------------------------------------------------------------------------


def cmd_demo(args: argparse.Namespace) -> None:
    """The main job on the embedded default: synthesise HAM-like data, sweep quick.yaml, write the report."""
    from hamtune.api import run_demo

    demo = run_demo(space=args.space, name=args.name, results=args.results, num_cpus=args.num_cpus, floor=not args.no_floor)
    print(f"sweep finished in {demo.seconds:.0f} s\n")
    show(demo.leaderboards)
    log.info("report: %s", demo.html)
    print(f"open the report in a browser: {demo.directory / 'report.html'}")


# ---- parser ---------------------------------------------------------------------------------------


def _image_size(text: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected WIDTHxHEIGHT such as 600x450, got {text!r}") from None
    return width, height


class CommandParser(argparse.ArgumentParser):
    """Every (sub)command takes -v/-q, so they work before or after the subcommand. SUPPRESS as the default keeps a
    subcommand's parser from overwriting a flag given before it."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.add_argument("-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="more log output (hamtune's debug lines)")
        self.add_argument(
            "-q",
            "--quiet",
            action="store_true",
            default=argparse.SUPPRESS,
            help="less: no progress lines, only results, warnings and errors",
        )


def build_parser() -> argparse.ArgumentParser:
    parser = CommandParser(
        prog="hamtune",
        description="Hyperparameter search for autoencoders and VAEs on HAM10000 (Ray Tune + Optuna).",
        epilog="exit codes: 0 done, 1 a failure while working (a missing file, bad data or results), 2 a usage error "
        "(an unknown flag or a bad flag value), 130 interrupted",
    )
    parser.add_argument("--version", action="version", version=f"hamtune {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the main job end to end on the embedded synthetic default")
    demo.add_argument("--space", type=Path, default=SHIPPED_DIR / "quick.yaml", help="search space (default search_spaces/quick.yaml)")
    demo.add_argument("--name", default=None, help="results/<name> (default demo-<time>)")
    demo.add_argument("--results", default="results", help="results root (default ./results)")
    demo.add_argument("--num-cpus", type=int, default=None, help="CPUs for the local Ray (default: all)")
    demo.add_argument("--no-floor", action="store_true", help="do not score the non-learned floor (blur, down/up-sampling, PCA)")
    demo.set_defaults(func=cmd_demo)

    data = commands.add_parser("data", help="synthesise, prepare and inspect datasets")
    data_commands = data.add_subparsers(dest="data_command", required=True, metavar="SUBCOMMAND")
    synth = data_commands.add_parser("synth", help="write a synthetic HAM-like dataset in the original release's layout")
    synth.add_argument("out", type=Path, help="folder to create")
    synth.add_argument("--n", type=int, default=2000, help="number of images (default 2000)")
    synth.add_argument("--seed", type=int, default=0)
    synth.add_argument("--image-size", type=_image_size, default=(600, 450), help="WIDTHxHEIGHT (default 600x450)")
    synth.add_argument("--workers", type=int, default=None, help="worker processes (default: cores, at most 4)")
    synth.set_defaults(func=cmd_data_synth)

    prep = data_commands.add_parser("prepare", help="decode any HAM10000 form into a cache (a re-run is a cache hit)")
    prep.add_argument("src", type=Path, help="folder or file: release (metadata + JPEGs/zips), hmnist_*.csv, dermamnist*.npz, ISIC 2018")
    prep.add_argument("--size", type=int, default=None, help="square side in px (default 64; arrays keep their size)")
    prep.add_argument("--crop", choices=CHOICES["crop"], default="center", help="how a 4:3 image becomes square")
    prep.add_argument("--channels", type=int, choices=CHOICES["channels"], default=3)
    prep.add_argument("--out", type=Path, default=None, help="cache folder (default under $HAMTUNE_CACHE)")
    prep.add_argument("--workers", type=int, default=None, help="decoding processes (default: all cores, at most 8)")
    prep.add_argument("--skip-missing", action="store_true", help="go on without listed images that are missing or unreadable")
    prep.add_argument("--metadata", type=Path, default=None, help="HAM10000_metadata.csv to attach lesion ids (hmnist, ISIC 2018)")
    prep.add_argument("--force", action="store_true", help="rebuild even if the cache is current")
    prep.set_defaults(func=cmd_data_prepare)

    info = data_commands.add_parser("info", help="print a prepared cache's manifest (and verify its contents)")
    info.add_argument("cache", type=Path)
    info.set_defaults(func=cmd_data_info)

    tr = commands.add_parser("train", help="train one config and record it like a one-trial sweep")
    tr.add_argument("--preset", default=None, help=", ".join(PRESETS))
    tr.add_argument("--data", default="synthetic", help="'synthetic' (default), a prepared cache, or any source folder/file")
    tr.add_argument("--test-data", default=None, help="an external test set (e.g. ISIC 2018 Task 3 test); val stays on --data")
    tr.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config value (repeatable)")
    tr.add_argument("--device", choices=CHOICES["device"], default=None, help="where to train (default auto: cuda, else mps, else cpu)")
    tr.add_argument("--name", default=None, help="results/<name> (default: the preset, or 'train')")
    tr.add_argument("--results", default="results", help="results root (default ./results)")
    tr.add_argument("--skip-missing", action="store_true", help="when preparing a source, skip missing/unreadable images")
    tr.add_argument(
        "--seeds",
        type=int,
        default=1,
        help="train seeds seed..seed+N-1, one results row each, and deliver their ensemble as one more row (default 1)",
    )
    tr.add_argument(
        "--keep",
        type=int,
        default=None,
        metavar="K",
        help="the delivered ensemble combines the K seeds best on validation (default: all of them)",
    )
    tr.add_argument(
        "--fuse",
        choices=("auto", "on", "off"),
        default="auto",
        help="train the seeds of a CNN AE as one grouped model: auto = on CUDA only (on CPU one seed after "
        "another measured faster), on, off (default auto)",
    )
    tr.set_defaults(func=cmd_train)
    bl = commands.add_parser(
        "baselines", help="PCA, blur, down/up-sampling, IsolationForest and k-NN on pixels, on exactly the deep models' splits"
    )
    bl.add_argument("data", help="'synthetic', a prepared cache, or any source folder/file (the sweep's data)")
    bl.add_argument("--protocol", choices=CHOICES["protocol"], default=None, help="anomaly protocol (default cancer)")
    bl.add_argument("--test-data", default=None, help="an external test set, as for train and sweep")
    bl.add_argument(
        "--methods",
        default=None,
        help="comma-separated pca-N, blur[-SIGMA], resample[-FACTOR], iforest, knn-K; reconstructions are scored "
        "by mse, ssim and mse+ssim (default pca-8,pca-32,pca-64,blur,resample,iforest,knn-5)",
    )
    bl.add_argument("--name", default="baselines", help="results/<name> (default baselines)")
    bl.add_argument("--results", default="results", help="results root (default ./results)")
    bl.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="split settings as the sweep has them: split_seed, val_fraction, test_fraction, max_train_images...",
    )
    bl.set_defaults(func=cmd_baselines)

    sw = commands.add_parser("sweep", help="search a space (search_spaces/*.yaml) with Ray Tune + Optuna")
    sw.add_argument("space", type=Path, help="a search-space YAML file, e.g. search_spaces/quick.yaml")
    sw.add_argument("--name", default=None, help="results/<name> (default: the space's name)")
    sw.add_argument("--data", default=None, help="override the space's data: 'synthetic', a prepared cache or a source")
    sw.add_argument("--test-data", default=None, help="override the space's external test set")
    sw.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a space key (num_samples=4) or fix a TrainConfig value (image_size=64); repeatable",
    )
    sw.add_argument("--results", default="results", help="results root (default ./results)")
    sw.add_argument("--address", default=None, help="join a running Ray cluster: auto or HOST:PORT")
    sw.add_argument("--resume", action="store_true", help="continue an interrupted sweep without redoing finished trials")
    sw.add_argument("--num-samples", type=int, default=None, help="override the space's num_samples")
    sw.add_argument("--gpus-per-trial", type=float, default=None, help="e.g. 0.25 packs four trials on one GPU")
    sw.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    sw.add_argument("--storage", default=None, help="Ray Tune storage (a shared path or URI for clusters)")
    sw.add_argument(
        "--runtime-env",
        default=None,
        metavar="JSON|FILE",
        help="Ray runtime_env for the cluster's workers (inline JSON or a JSON/YAML file): pip requirements, a "
        "hamtune wheel or source folder in py_modules, a working_dir; over the space's runtime_env: key (docs/cluster.md)",
    )
    sw.add_argument(
        "--log-to",
        action="append",
        choices=TRACKERS,
        default=None,
        help='also log to an experiment tracker through Tune\'s own callbacks: mlflow (pip install "hamtune[mlflow]"), '
        'wandb (pip install "hamtune[wandb]") or tensorboard; repeatable, added to the space\'s log_to',
    )
    sw.add_argument(
        "--confirm-top",
        type=int,
        default=None,
        metavar="K",
        help="after the search, run the K best configurations by validation on more seeds (the confirm stage; default 3)",
    )
    sw.add_argument(
        "--confirm-seeds",
        type=int,
        default=None,
        metavar="N",
        help="new seeds per confirmed configuration (default 5); the choice is then the best mean over seeds",
    )
    sw.add_argument(
        "--no-floor",
        action="store_true",
        help="do not score the non-learned floor (blur, down/up-sampling and "
        "PCA on the same split, seconds), which every report otherwise compares the models with",
    )
    sw.add_argument(
        "--keep-checkpoints",
        choices=("all", "best", "none"),
        default="best",
        help="what a finished trial keeps: best = the delivered weights, config, history and scores (what export, "
        "ensemble and reproduce need; the default), all = also the last epoch's weights and optimiser state, "
        "none = no weights (results only)",
    )
    sw.set_defaults(func=cmd_sweep)

    from hamtune.report.command import add_arguments as add_report_arguments

    rep = commands.add_parser("report", help="leaderboards and an HTML report of one or more sweeps (= python -m hamtune.report)")
    add_report_arguments(rep)
    rep.set_defaults(func=cmd_report)

    rp = commands.add_parser("reproduce", help="retrain a sweep's best configs on their original and new seeds")
    rp.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="a sweep's results folder")
    rp.add_argument("--top", type=int, default=3, help="how many of the best configs (default 3)")
    rp.add_argument("--seeds", type=int, default=5, help="new seeds per config, besides the original (default 5)")
    rp.add_argument("--metric", default=None, help="rank by this column instead of the sweep's objective")
    rp.add_argument("--data", type=Path, default=None, help="the sweep's prepared cache, if it moved (fingerprint-checked)")
    rp.add_argument("--test-data", type=Path, default=None, help="the sweep's external test cache, if it moved")
    rp.add_argument("--address", default=None, help="join a running Ray cluster: auto or HOST:PORT")
    rp.add_argument("--num-cpus", type=int, default=None, help="CPUs for a local Ray (default: all)")
    rp.add_argument("--cpus-per-trial", type=float, default=None, help="default: as the original trial ran (= its torch threads)")
    rp.add_argument("--gpus-per-trial", type=float, default=0.0, help="GPUs per run (default 0: CPU reproduces exactly)")
    rp.set_defaults(func=cmd_reproduce)

    ex = commands.add_parser("export", help="write a trial's model, preprocessing, threshold and model card to a folder")
    ex.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="a sweep's results folder")
    ex.add_argument(
        "--rank",
        type=int,
        default=None,
        help="which trial by the sweep's objective, 1 = best (default: the "
        "chosen model chosen.json records, e.g. a confirmed sweep's seed ensemble)",
    )
    ex.add_argument("--trial", default=None, help="export this trial id instead of a rank (e.g. the seed ensemble train --seeds delivers)")
    ex.add_argument("--metric", default=None, help="rank by this column instead of the sweep's objective")
    ex.add_argument("--out", type=Path, required=True, help="folder to write")
    ex.add_argument("--force", action="store_true", help="replace --out if it exists")
    ex.add_argument(
        "--format",
        "--program",
        dest="format",
        action="append",
        choices=FORMATS,
        default=None,
        help='also write a portable program: onnx (model.onnx + score.onnx; pip install "hamtune[onnx]") or '
        "torch-export (model.pt2); repeatable (default torch: the weights only). --program is the same flag, "
        "named apart from report's output --format",
    )
    ex.set_defaults(func=cmd_export)

    en = commands.add_parser("ensemble", help="combine a sweep's best trials, chosen on validation, into one detector")
    en.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="a sweep's results folder")
    en.add_argument("--top", type=int, default=3, help="how many of the best trials by the sweep's objective (default 3)")
    en.add_argument("--name", default=None, help="results/<name> (default <sweep>-ensemble)")
    en.add_argument("--results", default="results", help="results root (default ./results)")
    en.add_argument("--device", choices=CHOICES["device"], default="auto", help="where the members score (default auto, as train)")
    en.set_defaults(func=cmd_ensemble)

    sc = commands.add_parser("score", help="anomaly scores of images with an exported model, as a CSV")
    sc.add_argument("model", type=Path, metavar="DIR", help="a folder written by hamtune export")
    sc.add_argument("inputs", type=Path, nargs="+", metavar="INPUTS", help="JPEG/PNG files, folders (recursive) or prepared caches")
    sc.add_argument("--out", type=Path, default=Path("scores.csv"), help="CSV to write (default ./scores.csv)")
    sc.add_argument("--force", action="store_true", help="replace an existing --out that is not a .csv file")
    sc.add_argument("--device", choices=CHOICES["device"], default="auto", help="where the model runs (default auto, as train)")
    sc.add_argument("--no-progress", action="store_true", help="no progress bar")
    sc.add_argument(
        "--format",
        "--program",
        dest="format",
        choices=FORMATS,
        default="torch",
        help="run the model as: torch (the weights), onnx or torch-export (programs written by export --format); "
        "--program is the same flag",
    )
    sc.add_argument(
        "--maps",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each image's anomaly map (its mean is the score) as DIR/<image>.npy and .png; "
        "scores made of per-pixel parts only (mse, ssim, gms); computed with the PyTorch weights",
    )
    sc.set_defaults(func=cmd_score)

    ve = commands.add_parser("verify", help="recompute a bundle's golden vectors with one of its programs (checks a port)")
    ve.add_argument("model", type=Path, metavar="BUNDLE", help="a folder written by hamtune export")
    ve.add_argument(
        "--program",
        "--format",
        dest="program",
        choices=(*FORMATS, "pt2"),
        default="torch",
        help="torch (the weights), onnx (model.onnx and score.onnx) or torch-export (= pt2, model.pt2); default torch",
    )
    ve.add_argument("--device", choices=CHOICES["device"], default="cpu", help="where the program runs (default cpu, as exported)")
    ve.set_defaults(func=cmd_verify)
    from hamtune.data.shifts import DEFAULT_STRENGTHS, SHIFTS

    st = commands.add_parser(
        "stress", help="the delivered model, the best deep trial and the floor under acquisition shifts, on the test split (stress.parquet)"
    )
    st.add_argument("results_dir", type=Path, metavar="RESULTS_DIR", help="a results folder with its checkpoints and prepared data")
    st.add_argument("--shifts", default=None, help=f"comma-separated, from {','.join(SHIFTS)} (default: all)")
    st.add_argument(
        "--strengths",
        default=None,
        help=f"comma-separated numbers in (0, 1]; 1 is the strongest shift (default {','.join(map(str, DEFAULT_STRENGTHS))})",
    )
    st.add_argument("--device", choices=CHOICES["device"], default="auto", help="where the deep models score (default auto, as train)")
    st.add_argument("--seed", type=int, default=0, help="seed of the hair occluders (default 0)")
    st.set_defaults(func=cmd_stress)
    cl = commands.add_parser("cluster", help="manage a Ray cluster started with `ray start` (docs/cluster.md)")
    cl_commands = cl.add_subparsers(dest="cluster_command", required=True, metavar="SUBCOMMAND")
    stop = cl_commands.add_parser(
        "stop",
        help="end the Ray node(s) started on this host with --temp-dir=TEMP_DIR, and nothing else (`ray stop` ends every Ray on the host)",
    )
    stop.add_argument("temp_dir", type=Path, metavar="TEMP_DIR", help="the --temp-dir given to `ray start`")
    stop.add_argument("--grace", type=float, default=10.0, help="seconds between SIGTERM and SIGKILL (default 10)")
    stop.set_defaults(func=cmd_cluster_stop)
    return parser


WRITE_ERRORS = {  # what the system refused while writing, as a user can act on it
    errno.ENOSPC: "no space left on device; free some space and run again",
    errno.EDQUOT: "disk quota exceeded; free some space and run again",
    errno.EFBIG: "file too large for this file system or the file size limit (ulimit -f); write elsewhere",
    errno.EROFS: "a read-only file system; write elsewhere",
    errno.EACCES: "permission denied; write elsewhere or fix the folder's permissions",
}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    if verbose and quiet:
        parser.error("-v/--verbose and -q/--quiet exclude each other")
    from hamtune.files import check_interrupted, interrupt_handling

    try:
        with interrupt_handling(), console_logging(1 if verbose else -1 if quiet else 0):
            args.func(args)
            check_interrupted()  # a Ctrl-C that a library swallowed still ends the command as interrupted
    except HamtuneError as exc:
        print(f"hamtune: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("hamtune: interrupted", file=sys.stderr)
        return 130
    except OSError as exc:
        if exc.errno not in WRITE_ERRORS:
            raise
        where = f"{exc.filename}: " if exc.filename else ""
        print(f"hamtune: error: {one_line(where)}{WRITE_ERRORS[exc.errno]}; what was being written was not kept", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
