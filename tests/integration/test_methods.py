"""The methods card: what a paper needs about a sweep, from its results folder alone."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hamtune.cli import main
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow


def test_the_card_states_data_split_search_choice_software_and_commands(sweep_results, capsys):
    assert main(["report", str(sweep_results), "--format", "methods"]) == 0
    card = capsys.readouterr().out
    record = json.loads((sweep_results / "sweep.json").read_text())
    trials = load_results(sweep_results)[0]
    assert record["space"]["num_samples"] == len(trials) and record["finished_at"] and record["wall_time_s"] > 0
    assert record["hardware"]["cluster"]["CPU"] == 2 and record["versions"]["torch"]
    for expected in (
        f"content fingerprint {trials['data_fingerprint'].iloc[0]}",
        "Protocol cancer: normal = nv, bkl, vasc, df; anomalous = mel, bcc, akiec",
        "Images per diagnosis (train, normal classes only / val / test): nv ",
        "Sampler: tpe (n_startup_trials=2)",
        "Scheduler: none",
        f"Budget: {len(trials)} trials of up to 2 epochs",
        "latent_dim int [4, 32] log",
        "beta float [0.1, 1] when {'kind': ['vae']}",
        "chosen by best val_auroc (highest)",
        "95% bootstrap interval",
        "Optimiser: AdamW",
        "maximises F1 on the validation",
        f"torch {record['versions']['torch']}",
        "hamtune sweep ",
        "hamtune data prepare ",
        "Tschandl P",
    ):
        assert expected in card, expected
    counts = {line for line in card.splitlines() if line.startswith("- Images per diagnosis")}
    per_class = dict(item.strip().split(" ", 1) for item in next(iter(counts)).split(": ", 1)[1].rstrip(".").split(";"))
    split = {dx: [int(n) for n in v.split(" / ")] for dx, v in per_class.items()}
    manifest = json.loads((Path(trials["data_path"].iloc[0]) / "manifest.json").read_text())
    for dx, n in manifest["counts"].items():
        if dx in ("mel", "bcc", "akiec"):  # models train on normal images only: anomalies appear in val and test
            assert split[dx][0] == 0 and 0 < sum(split[dx]) <= n, dx
        else:
            assert sum(split[dx]) == n, dx  # every normal image in exactly one split


def test_the_latex_card_escapes_what_latex_would_read_as_markup(sweep_results, capsys):
    assert main(["report", str(sweep_results), "--format", "latex"]) == 0
    card = capsys.readouterr().out
    assert card.startswith(r"\subsection*{Methods: tiny}") and r"val\_auroc" in card and r"$\pm$" not in card.split("Result")[0]
    assert r"\item \texttt{hamtune data prepare" in card and card.count(r"\begin{itemize}") == card.count(r"\end{itemize}") == 8
    assert "verbatim" not in card  # a command string could close it
