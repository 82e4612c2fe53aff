"""A methods card: what a paper's methods section needs about a results folder, in Markdown or LaTeX.

Gathered from the folder alone (trials.parquet, sweep.json, confirm.json, scores.parquet) plus the prepared
data cache when it is still where the rows say (class counts per split need the images' labels): data and
its fingerprint, split and protocol, search space, sampler, scheduler, budget, seeds and confirm stage, the
chosen configuration with its figures over seeds and its test interval, package versions, hardware, wall
time, and the commands that reproduce it. Anything the folder does not record is said to be unknown.
"""

from __future__ import annotations

import math
import shlex
from pathlib import Path

import pandas as pd

from hamtune import escape
from hamtune.config_fields import DATA_KEYS, SPLIT_KEYS
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError
from hamtune.results.chosen import Chosen, chosen_of
from hamtune.results.configurations import mean_sd
from hamtune.results.intervals import compare, name_of, shown, signed, with_intervals
from hamtune.results.numbers import fmt
from hamtune.results.rank import RANKED_STATUSES, is_deep, objective, rank, resolve_metric
from hamtune.results.records import read_plan, read_record
from hamtune.results.roles import Role, having, role_name
from hamtune.results.store import load_results
from hamtune.train.config import TrainConfig

UNKNOWN = "not recorded"
COMMANDS = "Commands that reproduce it"
TABLE = "Results table"
CITATIONS = (
    "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source dermatoscopic "
    "images of common pigmented skin lesions. Scientific Data 5:180161 (2018).",
    "Bergstra J, Bardenet R, Bengio Y, Kegl B. Algorithms for hyper-parameter optimization. NeurIPS 24 (2011).",
    "Li L, Jamieson K, Rostamizadeh A, Gonina E, Ben-tzur J, Hardt M, Recht B, Talwalkar A. A system for massively "
    "parallel hyperparameter tuning. MLSys (2020).",
    "Wang Z, Bovik AC, Sheikh HR, Simoncelli EP. Image quality assessment: from error visibility to structural "
    "similarity. IEEE Transactions on Image Processing 13(4):600-612 (2004).",
    "Dodge J, Gururangan S, Card D, Schwartz R, Smith NA. Show your work: improved reporting of experimental results. EMNLP-IJCNLP (2019).",
    "Liaw R, Liang E, Nishihara R, Moritz P, Gonzalez JE, Stoica I. Tune: a research platform for distributed model "
    "selection and training. arXiv:1807.05118 (2018).",
    "Akiba T, Sano S, Yanase T, Ohta T, Koyama M. Optuna: a next-generation hyperparameter optimization framework. KDD (2019).",
    "Paszke A, Gross S, Massa F, et al. PyTorch: an imperative style, high-performance deep learning library. NeurIPS 32 (2019).",
)


def _split_counts(row: pd.Series) -> pd.DataFrame | None:
    """Images per diagnosis in train / val / test, from the prepared cache the trial ran on (None if it is gone)."""
    from hamtune.data.prepare import load_prepared
    from hamtune.train.config import build_config
    from hamtune.train.data import plan_splits

    path = row.get("data_path")
    if not isinstance(path, str) or not Path(path).is_dir():
        return None
    try:
        data = load_prepared(Path(path), verify=False)
        split = {k: row[k].item() if hasattr(row[k], "item") else row[k] for k in SPLIT_KEYS if k in row and pd.notna(row[k])}
        config = build_config(split, where="methods card").at_preprocessing(data.manifest)
        plan = plan_splits(data, config)
    except (HamtuneError, OSError, ValueError, TypeError):
        return None
    dx = data.meta["dx"].to_numpy(str)
    parts = {name: pd.Series(dx[rows]).value_counts() for name, rows in (("train", plan.train), ("val", plan.val), ("test", plan.test))}
    table = pd.DataFrame(parts).fillna(0).astype(int)
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index]


def _board(trials: pd.DataFrame, scores: pd.DataFrame, select, test_key: str) -> pd.DataFrame:
    """The leaderboard the chosen model was chosen on (validation first)."""
    board = rank(trials, resolve_metric("test_auroc", trials), select).boards
    return board.get(test_key) if test_key in board else next(iter(board.values()))


def results_rows(board: pd.DataFrame, chosen: Chosen, scores: pd.DataFrame) -> list[dict]:
    """The delivered model, the best classical row on validation and the best of each other classical family, each
    with its validation objective, test AUROC/AUPRC and their intervals and the paired difference to the delivered.
    Intervals are drawn for these rows only (a bootstrap per row of the whole board took seconds each)."""
    mine = board[board["trial_id"].astype(str) == chosen.trial_id]
    if not len(mine):
        return []
    classical = board[having(board["role"], Role.FLOOR) & (board["trial_id"].astype(str) != chosen.trial_id)]
    family = classical["baseline"] if "baseline" in classical.columns else classical.get("model", classical["trial_id"])
    others = classical.groupby(family.astype(str), sort=False).head(1) if len(classical) else classical
    shown = with_intervals(pd.concat([mine.iloc[:1], others]), scores)
    delivered, others = shown.iloc[0], shown.iloc[1:]
    rows = []
    for what, row in [("delivered", delivered), *(("baseline", r) for _, r in others.iterrows())]:
        rows.append(
            {
                "what": what,
                "name": name_of(row) if what == "baseline" else chosen.trial_id,
                "row": row,
                "difference": None if what == "delivered" else compare(delivered, row, scores),
            }
        )
    return rows


def gather(directory: Path) -> dict:
    """Everything the card says, as plain data."""
    directory = Path(directory)
    trials, _, scores = load_results(directory)
    record = read_record(directory) or {}
    plan = read_plan(directory)
    ranked = trials[trials["status"].isin(RANKED_STATUSES)]
    chosen = chosen_of(directory)
    if ranked.empty or chosen is None:
        raise HamtuneError(f"{directory}: no completed or stopped trial; a methods card describes a finished sweep")
    select = objective(trials, chosen.metric)
    board = _board(trials, scores, select, chosen.test_key)
    found = trials[trials["trial_id"].astype(str) == chosen.trial_id]
    row = found.iloc[0]
    if chosen.members:
        members = trials[trials["trial_id"].astype(str).isin(chosen.members)]
        row = members.iloc[0] if len(members) else row
    protocol = get_protocol(str(chosen.config.get("protocol") or row.get("protocol") or "cancer"))
    return {
        "directory": str(directory),
        "record": record,
        "plan": plan,
        "trials": trials,
        "select": select,
        "chosen": chosen,
        "row": row,
        "protocol": protocol,
        "table": results_rows(board, chosen, scores),
        "counts": _split_counts(row),
        "statuses": trials["status"].value_counts().to_dict(),
        "stages": trials["stage"].value_counts().to_dict() if "stage" in trials.columns else {},
        "classical_only": not is_deep(board).any(),
        "base": Path(record["cwd"]) if record.get("cwd") else None,
    }


def _manifest(row: pd.Series) -> dict:
    """The prepared cache's manifest, read from where the trial's row says the cache is ({} if it is gone)."""
    import json

    path = row.get("data_path")
    try:
        return json.loads((Path(path) / "manifest.json").read_text()) if isinstance(path, str) else {}
    except (OSError, ValueError):
        return {}


def _value(row: pd.Series, key: str) -> str:
    value = row.get(key)
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return UNKNOWN
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def portable(text: str, base: Path | None) -> str:
    """A path as a paper can print it: relative to the folder the sweep ran in (or this one), a shipped space by its
    name, anything else by its file name; never an absolute local path."""
    from hamtune.sweep.space import SHIPPED_DIR

    path = Path(text)
    if not path.is_absolute():
        return text
    for root in (base, Path.cwd()):
        if root is not None and path.is_relative_to(root):
            return str(path.relative_to(root)) or "."
    if path.parent == SHIPPED_DIR:
        return path.stem
    return path.name


def portable_command(command: str, base: Path | None) -> str:
    """A recorded command with each absolute path (a word, or the value of KEY=PATH) made portable; a command with
    no absolute path stays exactly as recorded (re-quoting it would drop its backslashes and newlines, so the card
    would show a command other than the one that ran)."""
    try:
        words = shlex.split(command)
    except ValueError:
        return command
    out = []
    for word in words:
        key, sep, value = word.partition("=")
        if sep and Path(value).is_absolute() and not Path(word).is_absolute():
            out.append(f"{key}={portable(value, base)}")
        else:
            out.append(portable(word, base))
    return command if out == words else shlex.join(out)


def baselines_command(info: dict) -> str:
    """The `hamtune baselines` command of a folder of classical rows (which records no command of its own)."""
    trials, row, base = info["trials"], info["row"], info["base"]
    classical = trials[trials["status"].isin(RANKED_STATUSES) & trials["model"].notna()] if "model" in trials else trials.iloc[0:0]
    methods = sorted({str(m).split("-ssim")[0].split("-mse+ssim")[0] for m in classical["model"]}) if len(classical) else []
    words = [
        "hamtune",
        "baselines",
        portable(str(row.get("data_path") or row.get("data_name") or "DATA"), base),
        "--name",
        Path(info["directory"]).name,
    ]
    if methods:
        words += ["--methods", ",".join(methods)]
    if isinstance(row.get("test_path"), str):
        words += ["--test-data", portable(row["test_path"], base)]
    defaults = TrainConfig()
    for key in DATA_KEYS:
        value = info["chosen"].config.get(key, row.get(key))
        if key in ("image_size", "crop", "channels") or value is None or value == getattr(defaults, key, None):
            continue
        words += ["--set", f"{key}={value}"]
    return shlex.join(words)


def _training(config: dict) -> list[str]:
    """How the delivered network was trained, from its typed configuration."""
    kind = config.get("kind")
    loss = {
        "mse": "per-pixel reconstruction mean squared error",
        "bce": "per-pixel reconstruction binary cross-entropy",
        "ssim": "one minus the SSIM of the reconstruction (Gaussian window 11, sigma 1.5)",
        "ssim_l1": "0.84 times one minus the SSIM of the reconstruction plus 0.16 times its mean absolute error",
    }.get(str(config.get("recon_loss")), UNKNOWN)
    if kind == "vae":
        loss += f" plus beta = {config.get('beta')} times the KL divergence to N(0, I)" + (
            f", beta warmed up over {config.get('kl_warmup')} epochs" if config.get("kl_warmup") else ""
        )
    patience = config.get("patience")
    augment = {
        "none": "none",
        "flips": "random horizontal and vertical flips",
        "dihedral": "random flips and 90-degree rotations (the dihedral group)",
    }.get(str(config.get("augment")), UNKNOWN)
    return [
        f"Model: {kind or UNKNOWN} autoencoder, {config.get('arch', UNKNOWN)} encoder/decoder, latent dimension "
        f"{config.get('latent_dim', UNKNOWN)}; trained on the normal training images only.",
        f"Optimiser: AdamW (PyTorch), learning rate {config.get('lr', UNKNOWN)}, weight decay {config.get('weight_decay', UNKNOWN)}, "
        f"batch size {config.get('batch_size', UNKNOWN)}, learning-rate schedule {config.get('lr_schedule', UNKNOWN)}; "
        f"precision {config.get('precision', UNKNOWN)}.",
        f"Loss: {loss}; class rebalancing {config.get('rebalance', UNKNOWN)}.",
        f"Epochs: at most {config.get('epochs', UNKNOWN)}; "
        + (f"early stopping after {patience} epochs without a better validation objective; " if patience else "no early stopping; ")
        + "the delivered weights are those of the epoch with the best validation objective.",
        f"Augmentation: {augment}" + (f"; colour jitter {config.get('color_jitter')}" if config.get("color_jitter") else "") + ".",
        *_denoising(config),
    ]


NOISE_WORDS = {
    "gaussian": "Gaussian noise of standard deviation {level} per pixel",
    "coarse": "coarse Gaussian noise of standard deviation {level}, drawn on a 16x16 grid and upsampled (Kascenas et al. 2022)",
    "mask": "each cell of an 8x8 grid set to grey with probability {level}",
}


def _denoising(config: dict) -> list[str]:
    """A line only for a denoising model: a card of a plain autoencoder reads as it always did."""
    noise = config.get("noise")
    if noise in (None, "none"):
        return []
    words = NOISE_WORDS.get(str(noise), UNKNOWN).format(level=config.get("noise_level", UNKNOWN))
    return [f"Denoising: the model reconstructs each clean training image from a corrupted copy ({words}) on [0, 1] pixels."]


def _evaluation(select, score: str | None) -> list[str]:
    """What every figure means, and how the threshold was chosen."""
    return [
        f"Anomaly score: {score or UNKNOWN} per image (mse: mean squared reconstruction error; ssim: 1 - SSIM of the "
        "reconstruction (Wang et al. 2004); several parts joined by + are each standardised by the mean and standard "
        "deviation of the validation normals, then summed). Higher is more anomalous.",
        "AUROC: area under the ROC curve; AUPRC: average precision (area under the precision-recall curve), anomalous "
        "images as the positive class.",
        "Threshold: the one that maximises F1 on the validation images, then applied unchanged to the test images "
        "(test precision, recall and F1 are at that threshold); test labels choose nothing.",
        f"Model choice: by the validation objective {select.column} ({'higher' if select.higher_is_better else 'lower'} is "
        "better); where configurations ran on several seeds, by its mean over seeds. Test metrics are only reported.",
        "Intervals: 95% stratified percentile bootstrap over the test images (2,000 resamples, fixed seed); a "
        "difference between two models uses the same resamples for both (paired). Means over seeds carry a 95% "
        "t-interval of the mean.",
    ]


def _result(info: dict) -> list[str]:
    chosen, select = info["chosen"], info["select"]
    what = (
        f"the seed ensemble of {len(chosen.members)} seeds ({', '.join(chosen.members)}) of configuration {chosen.config_id}"
        if chosen.members
        else f"trial {chosen.trial_id}"
    )
    if info["classical_only"]:
        what = f"the classical baseline {role_name(chosen.role)} ({chosen.trial_id})"
    lines = [f"Delivered model: {chosen.trial_id}, {what}; chosen by {chosen.rule}."]
    figures = []
    for metric in ("test_auroc", "test_auprc"):
        value, interval = chosen.metrics.get(metric), chosen.intervals.get(metric)
        if value is not None:
            figures.append(f"{metric} " + (shown(value, *interval) if interval else f"{value:.4f}"))
    if chosen.metrics.get(select.column) is not None:
        figures.insert(0, f"{select.column} {chosen.metrics[select.column]:.4f}")
    if figures:
        lines.append("Its figures: " + "; ".join(figures) + " (test values with their 95% bootstrap interval).")
    if chosen.seeds:
        lines.append(
            f"Over the configuration's {chosen.seeds['n']} seeds: {select.column} {mean_sd(chosen.seeds, select.column)}; "
            f"test AUROC {mean_sd(chosen.seeds, 'test_auroc')} (mean +- sd [95% t-interval of the mean])."
        )
    beaten = chosen.best_on_validation
    if beaten and not info["classical_only"]:
        lines.append(
            f"On validation, {beaten['role'] or beaten['trial_id']} ({beaten['trial_id']}) is better "
            f"({select.column} {beaten['value']:.4f}): the delivered model is the best deep one, not the best overall."
        )
    return lines


def sections(info: dict) -> list[tuple[str, list[str]]]:
    """The card as (heading, paragraphs/bullets) pairs, rendered by markdown() and latex(); the results table is
    rendered by each format from info["table"]."""
    record, row, chosen, select, base = info["record"], info["row"], info["chosen"], info["select"], info["base"]
    space, data = record.get("space", {}), record.get("data") or _manifest(row)
    protocol = info["protocol"]
    pre = data.get("preprocess", {})
    source = portable(str(data.get("source")), base) if data.get("source") else None
    data_lines = [
        f"Dataset: {_value(row, 'data_name')} (content fingerprint {_value(row, 'data_fingerprint')}). "
        + (
            f"{data['count']} images from {source} ({data.get('form')} form)."
            if data.get("count")
            else f"Its source and image count: {UNKNOWN}."
        ),
        f"Preprocessing: {pre.get('size', _value(row, 'image_size'))} px, crop {pre.get('crop', _value(row, 'crop'))}, "
        f"{pre.get('channels', _value(row, 'channels'))} channel(s), input range {_value(row, 'input_range')}.",
        f"Split: {_value(row, 'split')}-grouped train/validation/test (validation {_value(row, 'val_fraction')}, "
        f"test {_value(row, 'test_fraction')}), split seed {_value(row, 'split_seed')}; test set {_value(row, 'test_set')}.",
        f"Protocol {protocol.name}: normal = {', '.join(protocol.normal)}; anomalous = {', '.join(protocol.anomalous)}. "
        "Models train on the normal training images only.",
    ]
    counts = info["counts"]
    if counts is not None:
        data_lines.append(
            "Images per diagnosis (train, normal classes only / val / test): "
            + "; ".join(f"{dx} {r.train} / {r.val} / {r.test}" for dx, r in counts.iterrows())
            + "."
        )
    else:
        data_lines.append(f"Images per diagnosis and split: {UNKNOWN} (the prepared cache is not at the path the rows name).")
    search = []
    if space:
        params = "; ".join(_param(p) for p in space.get("params", [])) or "none"
        search += [
            "Objective: "
            + ", ".join(f"{m} ({mode})" for m, mode in space.get("objectives", []))
            + ", on validation; test metrics are only reported.",
            f"Search space ({portable(str(space.get('file')), base)}): {params}. Fixed: "
            + ", ".join(f"{k}={v}" for k, v in sorted(space.get("fixed", {}).items()))
            + ".",
            f"Sampler: {_options(space.get('sampler', {}))}. Scheduler: {_options(space.get('scheduler', {}))}.",
            f"Budget: {space.get('num_samples')} trials of up to {space.get('max_epochs')} epochs, "
            f"{space.get('resources', {}).get('cpus')} CPU(s) and {space.get('resources', {}).get('gpus')} GPU(s) per trial.",
        ]
    elif info["classical_only"]:
        search.append(
            "No search and no network: this folder holds classical baselines only (hamtune baselines), "
            "each fitted on the normal training images of the split below; a method with several settings "
            "(blur sigma, sampling factor) keeps the one with the best validation objective."
        )
    else:
        search.append(f"Search settings: {UNKNOWN} (no sweep.json: a single `hamtune train` run or a sweep written before it existed).")
    confirm = info["plan"]
    if confirm:
        search.append(
            f"Confirm stage: the best {confirm['top']} configurations by validation ({confirm['metric']}) each "
            f"ran {confirm['seeds']} more seeds; the chosen configuration is the best mean over its seeds."
        )
    if any(r["what"] == "baseline" for r in info["table"]) and not info["classical_only"]:
        search.append(
            "Floor: non-learned and classical baselines on the same split, scored like the models: a Gaussian "
            "blur and an area down-sampling then bilinear up-sampling of each image (sigma and factor chosen on "
            "validation) and PCA reconstructions, by each reconstruction score; rows named classical."
        )
    stages = ", ".join(f"{v} {k}" for k, v in info["stages"].items())
    search.append(
        f"Trials: {len(info['trials'])} ({', '.join(f'{v} {k}' for k, v in info['statuses'].items())}"
        + (f"; {stages}" if stages else "")
        + ")."
    )
    training = (
        ["No network is trained: each method reconstructs or scores images directly (PCA is fitted on the normal training images)."]
        if info["classical_only"]
        else _training(chosen.config)
    )
    versions = record.get("versions") or {"hamtune": _value(row, "hamtune_version")}
    hardware = record.get("hardware") or {}
    wall = record.get("wall_time_s")
    software = [
        "Software: "
        + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; git commit {record.get('git_commit') or _value(row, 'git_commit')}.",
        (
            f"Hardware: {hardware.get('platform')}, {hardware.get('cpus')} CPU(s), GPU {hardware.get('gpu') or 'none'}"
            + (f"; Ray cluster {hardware['cluster']}" if hardware.get("cluster") else "")
            + "."
            if hardware
            else f"Hardware: {UNKNOWN}."
        ),
        f"Wall time: {f'{wall / 60:.1f} min' if isinstance(wall, (int, float)) else UNKNOWN}"
        + (f" (started {record.get('started_at')}, finished {record.get('finished_at')})." if record else "."),
    ]
    commands = []
    if data.get("source"):
        from hamtune.data.prepare import rebuild_command

        commands.append(portable_command(rebuild_command(data).replace(" --force", ""), base))
    if record.get("command"):
        commands.append(portable_command(record["command"], base))
    elif info["classical_only"]:
        commands.append(baselines_command(info))
    commands.append(shlex.join(["hamtune", "report", portable(str(Path(info["directory"]).resolve()), base), "--format", "latex"]))
    return [
        ("Data", data_lines),
        ("Search", search),
        ("Training", training),
        ("Evaluation", _evaluation(select, chosen.config.get("score") or _value(row, "score"))),
        ("Result", _result(info)),
        (TABLE, []),
        ("Software and hardware", software),
        (COMMANDS, commands),
        ("Cite", list(CITATIONS)),
    ]


def table_cells(info: dict) -> tuple[list[str], list[list[str]]]:
    """The results table as plain text cells: header, then one row per model (the delivered one first)."""
    select = info["select"]
    header = ["Model", select.column, "Test AUROC [95% CI]", "Test AUPRC [95% CI]", "Delivered - this, AUROC [95% CI]"]
    rows = []
    for item in info["table"]:
        row = item["row"]
        cells = [("Delivered: " if item["what"] == "delivered" else "") + str(item["name"]), fmt(row.get(select.column), "-")]
        for metric in ("test_auroc", "test_auprc"):
            value, low, high = (row.get(metric), row.get(f"{metric}_low"), row.get(f"{metric}_high"))
            cells.append(shown(float(value), float(low), float(high)) if value is not None and pd.notna(value) else "-")
        difference = item["difference"]
        cells.append("" if item["what"] == "delivered" else signed(difference) if difference is not None else "-")
        rows.append(cells)
    return header, rows


def _param(p: dict) -> str:
    kind = p.get("kind")
    if kind == "choice":
        spec = "{" + ", ".join(str(v) for v in p.get("values", [])) + "}"
    else:
        spec = f"{kind} [{p.get('low'):g}, {p.get('high'):g}]" + (" log" if p.get("log") else "")
    when = p.get("when")
    return f"{p['name']} {spec}" + (f" when {when}" if when else "")


def _options(spec: dict) -> str:
    name = spec.get("name", UNKNOWN)
    rest = ", ".join(f"{k}={v}" for k, v in spec.items() if k != "name")
    return f"{name} ({rest})" if rest else str(name)


def markdown(info: dict) -> str:
    out = [f"# Methods: {escape.markdown(info['record'].get('sweep') or Path(info['directory']).name)}", ""]
    for title, lines in sections(info):
        if title == TABLE:
            header, rows = table_cells(info)
            if rows:
                out += [
                    f"## {title}",
                    "",
                    "| " + " | ".join(escape.markdown(h) for h in header) + " |",
                    "|" + "|".join(["---"] + ["---:"] * (len(header) - 1)) + "|",
                    *("| " + " | ".join(escape.markdown(c) for c in row) + " |" for row in rows),
                    "",
                ]
            continue
        out += [f"## {title}", ""]
        if title == COMMANDS:
            out += [*escape.markdown_code(lines, "bash"), ""]
        else:
            out += [f"- {escape.markdown(line)}" for line in lines] + [""]
    return "\n".join(out)


def tex(text: str) -> str:
    """Any string for LaTeX (hamtune.escape: a folder's strings never run)."""
    return escape.latex(text)


def _prose(line: str) -> str:
    return tex(line).replace("+-", r"$\pm$")


def latex_table(info: dict) -> list[str]:
    """The results table in booktabs form (\\usepackage{booktabs})."""
    header, rows = table_cells(info)
    if not rows:
        return []
    return [
        r"\begin{table}[ht]",
        r"\centering",
        r"\begin{tabular}{l" + "r" * (len(header) - 1) + "}",
        r"\toprule",
        " & ".join(tex(h) for h in header) + r" \\",
        r"\midrule",
        *(" & ".join(tex(c) for c in row) + r" \\" for row in rows),
        r"\bottomrule",
        r"\end{tabular}",
        r"\caption{"
        + tex(
            f"Test AUROC and AUPRC with 95% stratified bootstrap intervals; the last column is the paired "
            f"difference of test AUROC, delivered model minus that row, over the same resamples. Models "
            f"are chosen on {info['select'].column} (validation)."
        )
        + "}",
        r"\end{table}",
    ]


def latex(info: dict) -> str:
    out = [rf"\subsection*{{Methods: {tex(info['record'].get('sweep') or Path(info['directory']).name)}}}"]
    for title, lines in sections(info):
        if title == TABLE:
            out += latex_table(info)
            continue
        out.append(rf"\paragraph{{{tex(title)}.}}")
        if title == COMMANDS:
            out += [r"\begin{itemize}", *(rf"  \item {escape.latex_code(line)}" for line in lines), r"\end{itemize}"]
        else:
            out += [r"\begin{itemize}", *(rf"  \item {_prose(line)}" for line in lines), r"\end{itemize}"]
    return "\n".join(out) + "\n"


def methods_card(directory: Path, form: str = "methods") -> str:
    """The card of one results folder: form 'methods' (Markdown) or 'latex'."""
    info = gather(Path(directory))
    return latex(info) if form == "latex" else markdown(info)
