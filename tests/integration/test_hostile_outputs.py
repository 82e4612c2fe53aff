"""Hostile input, third round (issue 32, item 3 and NaN scores): strings from a received results folder or from
file names reach LaTeX, Markdown, CSV, HTML and the terminal escaped, so none runs where the output is opened."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import assert_one_line_error, run_cli
from PIL import Image

from hamtune import escape
from hamtune.cli import main
from hamtune.export import integrity
from hamtune.export.bundle import META, NAMES
from hamtune.results.layout import TRIALS
from hamtune.results.store import read_parquet, write_parquet

FORMULA = "=cmd|' /C calc'!A0"
LATEX_ATTACK = "x\n\\end{verbatim}\\immediate\\write18{touch pwned}\\input{/etc/passwd}"


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bundle-out") / "b"
    assert main(["export", str(trained), "--out", str(out)]) == 0
    return out


def hostile_copy(trained: Path, to: Path) -> Path:
    """A received results folder: a trial id that is a spreadsheet formula, a sweep.json command that closes LaTeX's
    verbatim and runs a shell, and a sweep name holding Markdown and HTML."""
    folder = shutil.copytree(trained, to)
    trials = read_parquet(folder / TRIALS)
    write_parquet(trials.assign(trial_id=FORMULA, sweep="<img src=x onerror=alert(1)>|`x`"), folder / TRIALS)
    (folder / "sweep.json").write_text(json.dumps({"sweep": "s</h1><script>alert(1)</script>|`", "command": LATEX_ATTACK}))
    return folder


def test_unit_rules():
    assert escape.spreadsheet(FORMULA) == "'" + FORMULA and escape.spreadsheet("-0.5") == "-0.5"
    assert escape.spreadsheet("@SUM(A1)").startswith("'") and escape.spreadsheet("\tx").startswith("'")
    assert escape.spreadsheet(1.5) == 1.5 and escape.spreadsheet("plain") == "plain"
    assert escape.markdown("a|b`c<i>") == "a\\|b\\`c&lt;i&gt;" and "](" not in escape.markdown("[x](javascript:y)")
    assert escape.latex(r"\end{verbatim}") == r"\textbackslash{}end\{verbatim\}"
    fenced = escape.markdown_code(["a ```` b"])
    assert fenced[0] == fenced[-1] == "`````"
    assert escape.terminal("a\x1b]0;title\x07b") == "a\\x1b]0;title\\x07b"


def test_the_latex_card_never_puts_a_received_command_in_verbatim(capsys, trained, tmp_path):
    folder = hostile_copy(trained, tmp_path / "r")
    code, card, _ = run_cli(capsys, "report", folder, "--format", "latex")
    assert code == 0
    assert "verbatim" not in card.replace(r"end\{verbatim\}", "")
    for raw in (r"\input{", r"\write18{", r"\immediate"):
        assert raw not in card
    assert r"\texttt{x\textbackslash{}nend\{verbatim\}" in card.replace("\\textbackslash{}n\\textbackslash{}", "\\textbackslash{}n")


def test_the_markdown_card_and_leaderboards_escape_pipes_backticks_and_html(capsys, trained, tmp_path):
    folder = hostile_copy(trained, tmp_path / "r")
    code, card, _ = run_cli(capsys, "report", folder, "--format", "methods")
    assert code == 0 and "<script>" not in card and "&lt;script&gt;" in card
    lines = card.splitlines()
    opened = lines.index("```bash")
    closed = lines.index("```", opened)
    assert any("\\n\\end{verbatim}" in line for line in lines[opened:closed])  # the command stays one line in the block
    code, board, _ = run_cli(capsys, "report", folder, "--format", "markdown", "--no-html")
    assert code == 0 and "<img" not in board and "&lt;img src=x onerror=alert(1)&gt;\\|\\`x\\`" in board
    rows = [line for line in board.splitlines() if line.startswith("| 1 ")]
    header = next(line for line in board.splitlines() if line.startswith("| rank "))
    assert rows and all(len(r.replace("\\|", "").split("|")) == len(header.split("|")) for r in rows)  # no extra cell


def test_csv_leaderboards_and_the_html_report_neutralise_received_strings(capsys, trained, tmp_path):
    folder = hostile_copy(trained, tmp_path / "r")
    code, out, _ = run_cli(capsys, "report", folder, "--format", "csv")
    assert code == 0
    rows = list(csv.DictReader(io.StringIO(out)))
    assert rows and all(row["trial_id"] == "'" + FORMULA for row in rows)
    code, _, _ = run_cli(capsys, "report", folder, "--html", tmp_path / "report.html")  # csv only prints: the page is its own run
    assert code == 0
    page = (tmp_path / "report.html").read_text()
    assert "<img src=x" not in page and "<script>alert" not in page


def test_score_csv_neutralises_a_relative_image_name_that_is_a_formula(capsys, bundle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8)).save(tmp_path / "=1+2.png")
    code, _, err = run_cli(capsys, "score", bundle, "=1+2.png", "--out", "s.csv")
    assert code == 0, err
    assert next(csv.DictReader(io.StringIO((tmp_path / "s.csv").read_text())))["image"] == "'=1+2.png"


def nan_weights(bundle: Path, to: Path) -> Path:
    shutil.copytree(bundle, to)
    weights = torch.load(to / "model.pt", weights_only=True)
    torch.save({k: torch.full_like(v, float("nan")) if v.is_floating_point() else v for k, v in weights.items()}, to / "model.pt")
    info = json.loads((to / META).read_text())
    info[integrity.DIGESTS] = integrity.digests(to, NAMES, META)
    (to / META).write_text(json.dumps(info))
    return to


def test_nan_scores_are_an_error_naming_the_image_never_empty_cells_read_as_normal(capsys, bundle, tmp_path):
    broken = nan_weights(bundle, tmp_path / "nan")
    image = tmp_path / "ISIC_1.png"
    Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8)).save(image)
    code, _, err = run_cli(capsys, "score", broken, image, "--out", tmp_path / "s.csv")
    assert_one_line_error(code, err, str(image), "not a finite number")
    assert not (tmp_path / "s.csv").exists()
