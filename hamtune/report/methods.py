"""A methods card: what a paper's methods section needs about a results folder, in Markdown or LaTeX.

Gathered from the folder alone (trials.parquet, sweep.json, confirm.json, scores.parquet) plus the prepared
data cache when it is still where the rows say (class counts per split need the images' labels): data and
its fingerprint, split and protocol, search space, sampler, scheduler, budget, seeds and confirm stage, the
chosen configuration with its figures over seeds and its test interval, package versions, hardware, wall
time, and the commands that reproduce it. Anything the folder does not record is said to be unknown.
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from hamtune import escape
from hamtune.data.splits import get_protocol
from hamtune.errors import HamtuneError
from hamtune.results.configurations import config_ids, mean_sd, per_configuration, seed_rows
from hamtune.results.intervals import bootstrap, shown
from hamtune.results.rank import RANKED_STATUSES, objective
from hamtune.results.store import load_results

UNKNOWN = "not recorded"
CITATIONS = (
    "Tschandl P, Rosendahl C, Kittler H. The HAM10000 dataset, a large collection of multi-source dermatoscopic "
    "images of common pigmented skin lesions. Scientific Data 5:180161 (2018).",
    "Akiba T, Sano S, Yanase T, Ohta T, Koyama M. Optuna: a next-generation hyperparameter optimization framework. KDD (2019).",
    "Liaw R, Liang E, Nishihara R, Moritz P, Gonzalez JE, Stoica I. Tune: a research platform for distributed model "
    "selection and training. arXiv:1807.05118 (2018).",
)


def _split_counts(row: pd.Series) -> pd.DataFrame | None:
    """Images per diagnosis in train / val / test, from the prepared cache the trial ran on (None if it is gone)."""
    from hamtune.data.prepare import load_prepared
    from hamtune.sweep.reproduce import trial_values
    from hamtune.train.config import build_config
    from hamtune.train.data import plan_splits

    path = row.get("data_path")
    if not isinstance(path, str) or not Path(path).is_dir():
        return None
    try:
        data = load_prepared(Path(path), verify=False)
        config = build_config(trial_values(row), where="methods card").at_preprocessing(data.manifest)
        plan = plan_splits(data, config)
    except (HamtuneError, OSError, ValueError, TypeError):
        return None
    dx = data.meta["dx"].to_numpy(str)
    parts = {name: pd.Series(dx[rows]).value_counts() for name, rows in (("train", plan.train), ("val", plan.val), ("test", plan.test))}
    table = pd.DataFrame(parts).fillna(0).astype(int)
    return table.loc[table.sum(axis=1).sort_values(ascending=False).index]


def gather(directory: Path) -> dict:
    """Everything the card says, as plain data."""
    from hamtune.sweep.confirm import read_plan
    from hamtune.sweep.provenance import read

    directory = Path(directory)
    trials, _, scores = load_results(directory)
    record = read(directory) or {}
    plan = read_plan(directory)
    ranked = trials[trials["status"].isin(RANKED_STATUSES)]
    if ranked.empty:
        raise HamtuneError(f"{directory}: no completed or stopped trial; a methods card describes a finished sweep")
    select = objective(trials)
    table = per_configuration(seed_rows(ranked), select)
    chosen_config = table.iloc[0]
    members = ranked[config_ids(ranked) == chosen_config["config_id"]]
    first = members[members["trial_id"].astype(str) == chosen_config["config_id"]]
    chosen = (first if len(first) else members).iloc[0]
    interval = None
    mine = scores[scores["trial_id"].astype(str) == str(chosen["trial_id"])] if len(scores) else scores
    if len(mine) and mine["label"].nunique() == 2:
        interval = bootstrap(mine["label"].to_numpy(int), mine["score"].to_numpy(float))["auroc"]
    protocol = get_protocol(str(chosen.get("protocol") or "cancer"))
    return {
        "directory": str(directory), "record": record, "plan": plan, "trials": trials, "select": select,
        "chosen": chosen, "chosen_config": chosen_config, "interval": interval, "protocol": protocol,
        "counts": _split_counts(chosen), "statuses": trials["status"].value_counts().to_dict(),
        "stages": trials["stage"].value_counts().to_dict() if "stage" in trials.columns else {},
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


def sections(info: dict) -> list[tuple[str, list[str]]]:
    """The card as (heading, paragraphs/bullets) pairs, rendered by markdown() and latex()."""
    record, chosen, config, select = info["record"], info["chosen"], info["chosen_config"], info["select"]
    space, data = record.get("space", {}), record.get("data") or _manifest(chosen)
    protocol = info["protocol"]
    pre = data.get("preprocess", {})
    data_lines = [
        f"Dataset: {_value(chosen, 'data_name')} (content fingerprint {_value(chosen, 'data_fingerprint')}). "
        + (f"{data['count']} images from {data.get('source')} ({data.get('form')} form)." if data.get("count")
         else f"Its source and image count: {UNKNOWN}."),
        f"Preprocessing: {pre.get('size', _value(chosen, 'image_size'))} px, crop {pre.get('crop', _value(chosen, 'crop'))}, "
        f"{pre.get('channels', _value(chosen, 'channels'))} channel(s), input range {_value(chosen, 'input_range')}.",
        f"Split: {_value(chosen, 'split')}-grouped train/validation/test (validation {_value(chosen, 'val_fraction')}, "
        f"test {_value(chosen, 'test_fraction')}), split seed {_value(chosen, 'split_seed')}; test set {_value(chosen, 'test_set')}.",
        f"Protocol {protocol.name}: normal = {', '.join(protocol.normal)}; anomalous = {', '.join(protocol.anomalous)}. "
        "Models train on the normal training images only.",
    ]
    counts = info["counts"]
    if counts is not None:
        data_lines.append("Images per diagnosis (train, normal classes only / val / test): " + "; ".join(
            f"{dx} {r.train} / {r.val} / {r.test}" for dx, r in counts.iterrows()) + ".")
    else:
        data_lines.append(f"Images per diagnosis and split: {UNKNOWN} (the prepared cache is not at the path the rows name).")
    search = []
    if space:
        params = "; ".join(_param(p) for p in space.get("params", [])) or "none"
        search += [
            "Objective: " + ", ".join(f"{m} ({mode})" for m, mode in space.get("objectives", []))
            + ", on validation; test metrics are only reported.",
            f"Search space ({space.get('file')}): {params}. Fixed: "
            + ", ".join(f"{k}={v}" for k, v in sorted(space.get("fixed", {}).items())) + ".",
            f"Sampler: {_options(space.get('sampler', {}))}. Scheduler: {_options(space.get('scheduler', {}))}.",
            f"Budget: {space.get('num_samples')} trials of up to {space.get('max_epochs')} epochs, "
            f"{space.get('resources', {}).get('cpus')} CPU(s) and {space.get('resources', {}).get('gpus')} GPU(s) per trial.",
        ]
    else:
        search.append(f"Search settings: {UNKNOWN} (no sweep.json: a single `hamtune train` run or a sweep written "
                      "before it existed).")
    confirm = info["plan"]
    if confirm:
        search.append(f"Confirm stage: the best {confirm['top']} configurations by validation ({confirm['metric']}) each "
                      f"ran {confirm['seeds']} more seeds; the chosen configuration is the best mean over its seeds.")
    stages = ", ".join(f"{v} {k}" for k, v in info["stages"].items())
    search.append(f"Trials: {len(info['trials'])} ({', '.join(f'{v} {k}' for k, v in info['statuses'].items())}"
                  + (f"; {stages}" if stages else "") + ").")
    result = [
        f"Chosen configuration: {config['config_id']} ({_value(chosen, 'kind')}/{_value(chosen, 'arch')}, latent "
        f"{_value(chosen, 'latent_dim')}, batch {_value(chosen, 'batch_size')}, lr {_value(chosen, 'lr')}, score "
        f"{_value(chosen, 'score')}, best epoch {_value(chosen, 'best_epoch')}), by the mean {select.column} "
        f"over {int(config['n'])} seed(s).",
        f"{select.column}: {mean_sd(config, select.column)}; test AUROC: {mean_sd(config, 'test_auroc')}; "
        f"test AUPRC: {mean_sd(config, 'test_auprc')} (mean +- sd over seeds [95% t-interval of the mean]).",
    ]
    if info["interval"] is not None:
        i = info["interval"]
        result.append(f"Test AUROC of its first seed ({chosen['trial_id']}): {shown(i.value, i.low, i.high)} "
                      "(95% stratified bootstrap interval, 2,000 resamples).")
    versions = record.get("versions") or {"hamtune": _value(chosen, "hamtune_version")}
    hardware = record.get("hardware") or {}
    wall = record.get("wall_time_s")
    software = [
        "Software: " + ", ".join(f"{k} {v}" for k, v in versions.items())
        + f"; git commit {record.get('git_commit') or _value(chosen, 'git_commit')}.",
        (f"Hardware: {hardware.get('platform')}, {hardware.get('cpus')} CPU(s), GPU {hardware.get('gpu') or 'none'}"
         + (f"; Ray cluster {hardware['cluster']}" if hardware.get("cluster") else "") + "."
         if hardware else f"Hardware: {UNKNOWN}."),
        f"Wall time: {f'{wall / 60:.1f} min' if isinstance(wall, (int, float)) else UNKNOWN}"
        + (f" (started {record.get('started_at')}, finished {record.get('finished_at')})." if record else "."),
    ]
    commands = []
    if data.get("source"):
        from hamtune.data.prepare import rebuild_command

        commands.append(rebuild_command(data).replace(" --force", ""))
    if record.get("command"):
        commands.append(record["command"])
    commands.append(f"hamtune report {info['directory']}")
    return [("Data", data_lines), ("Search", search), ("Result", result), ("Software and hardware", software),
            ("Commands that reproduce it", commands), ("Cite", list(CITATIONS))]


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
        out += [f"## {title}", ""]
        if title == "Commands that reproduce it":
            out += [*escape.markdown_code(lines, "bash"), ""]
        else:
            out += [f"- {escape.markdown(line)}" for line in lines] + [""]
    return "\n".join(out)


def tex(text: str) -> str:
    return escape.latex(text).replace("+-", r"$\pm$")


def latex(info: dict) -> str:
    out = [rf"\subsection*{{Methods: {tex(info['record'].get('sweep') or Path(info['directory']).name)}}}"]
    for title, lines in sections(info):
        out.append(rf"\paragraph{{{tex(title)}.}}")
        if title == "Commands that reproduce it":
            out += [r"\begin{itemize}", *(rf"  \item {escape.latex_code(line)}" for line in lines), r"\end{itemize}"]
        else:
            out += [r"\begin{itemize}", *(rf"  \item {tex(line)}" for line in lines), r"\end{itemize}"]
    return "\n".join(out) + "\n"


def methods_card(directory: Path, form: str = "methods") -> str:
    """The card of one results folder: form 'methods' (Markdown) or 'latex'."""
    info = gather(Path(directory))
    return latex(info) if form == "latex" else markdown(info)
