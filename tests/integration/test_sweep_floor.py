"""A sweep scores the non-learned floor on its own split by default (and a resume adds no second copy); the
methods card of a sweep or of a baselines folder is one a paper can paste, and reproduces the sweep."""

from __future__ import annotations

import json
import os
import shlex
import shutil
from pathlib import Path

import pytest
import yaml
from conftest import TINY_SPACE

from hamtune.cli import build_parser, main
from hamtune.results.chosen import chosen_of
from hamtune.results.intervals import comparisons
from hamtune.results.rank import objective, rank, resolve_metric, role
from hamtune.results.store import load_results

pytestmark = pytest.mark.slow

SETS = ["max_epochs=1", "lr=0.002", "batch_size=32"]


def _space(path: Path, prepared) -> Path:
    raw = {key: value for key, value in TINY_SPACE.items() if key != "floor"}
    path.write_text(yaml.safe_dump({**raw, "data": str(prepared.path), "points_to_evaluate": []}, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def floored(prepared, ray_local, tmp_path_factory) -> tuple[Path, list[str]]:
    """A quick CLI sweep with overrides, a confirm stage and an address, as a new user runs it; the floor on by default."""
    root = tmp_path_factory.mktemp("floored")
    space = _space(root / "space.yaml", prepared)
    argv = [
        "sweep",
        str(space),
        "--results",
        str(root / "results"),
        "--name",
        "floored",
        "--num-samples",
        "2",
        *(w for s in SETS for w in ("--set", s)),
        "--confirm-top",
        "1",
        "--confirm-seeds",
        "2",
        "--address",
        "auto",
    ]
    assert main(argv) == 0
    return root / "results" / "floored", argv


def _classical(trials):
    return trials[role(trials).str.startswith("classical:")]


def test_a_sweep_scores_the_floor_on_its_own_split_and_a_resume_adds_no_second_copy(floored):
    directory, argv = floored
    trials, _, scores = load_results(directory)
    floor = _classical(trials)
    assert set(floor["baseline"]) == {"blur", "resample", "pca"} and len(floor) == 9  # 3 methods x 3 scores
    deep = trials[trials["kind"].isin(["ae", "vae"])]
    for key in ("data_fingerprint", "split_seed", "val_fraction", "test_fraction", "image_size"):
        assert set(floor[key]) == set(deep[key]), key
    test_ids = set(scores.loc[scores["trial_id"] == deep["trial_id"].iloc[0], "image_id"])
    for trial_id in floor["trial_id"]:
        assert set(scores.loc[scores["trial_id"] == trial_id, "image_id"]) == test_ids, trial_id
    board = next(iter(rank(trials, resolve_metric("test_auroc", trials), objective(trials)).boards.values()))
    chosen = board[board["trial_id"] == chosen_of(directory).trial_id].iloc[0]
    against = dict((what, interval) for what, _, interval in comparisons(board, chosen, scores))
    assert against["the best baseline"] is not None  # the paired comparison has the floor's per-image scores
    before = len(trials)
    assert main([*argv, "--resume"]) == 0
    again = load_results(directory)[0]
    assert len(again) == before and again["trial_id"].is_unique and len(_classical(again)) == 9


def test_no_floor_leaves_it_out_and_is_recorded_in_the_command(prepared, ray_local, tmp_path):
    import hamtune

    raw = {key: value for key, value in TINY_SPACE.items() if key != "floor"}
    folder = hamtune.run_sweep(
        {**raw, "data": str(prepared.path), "points_to_evaluate": []},
        results=tmp_path,
        name="bare",
        num_samples=1,
        max_epochs=1,
        floor=False,
    ).directory  # run_sweep returns Results
    assert not len(_classical(load_results(folder)[0]))
    assert "--no-floor" in json.loads((folder / "sweep.json").read_text())["command"]


def _command(card: str, program: str) -> list[str]:
    lines = [line for line in card.splitlines() if line.startswith(f"hamtune {program} ")]
    assert len(lines) == 1, card
    return shlex.split(lines[0])


def test_the_methods_card_reproduces_the_sweep_and_names_the_delivered_model(floored, capsys):
    directory, argv = floored
    assert main(["report", str(directory), "--format", "methods"]) == 0
    card = capsys.readouterr().out
    words = _command(card, "sweep")
    args, given = build_parser().parse_args(words[1:]), build_parser().parse_args(argv)
    for key in ("set", "confirm_top", "confirm_seeds", "address", "num_samples", "no_floor", "name"):
        assert getattr(args, key) == getattr(given, key), key
    assert args.set == SETS and not Path(args.space).is_absolute() and not Path(args.results).is_absolute()
    assert str(directory.parent.parent) not in card and os.getcwd() not in card
    chosen = chosen_of(directory)
    assert chosen.members and f"| Delivered: {chosen.trial_id} |" in card and "Optimiser: AdamW" in card
    assert "Bergstra J" in card and "Wang Z" in card and "Dodge J" in card and "Paszke A" in card
    assert main(["report", str(directory), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    table = latex[latex.index(r"\toprule") : latex.index(r"\bottomrule")]
    assert r"\midrule" in table and f"Delivered: {chosen.trial_id}".replace("_", r"\_") in table
    assert table.count(r" \\") == 1 + 1 + 3  # header, the delivered model, one row per floor family
    assert "verbatim" not in latex and latex.count(r"\begin{itemize}") == latex.count(r"\end{itemize}") == 8


@pytest.fixture
def baselines_folder(prepared, tmp_path) -> Path:
    assert (
        main(
            [
                "baselines",
                str(prepared.path),
                "--methods",
                "blur,pca-8",
                "--results",
                str(tmp_path),
                "--name",
                "classical",
                "--set",
                "split_seed=3",
            ]
        )
        == 0
    )
    return tmp_path / "classical"


def test_a_baselines_folder_gets_a_card_of_its_own(baselines_folder, capsys):
    assert main(["report", str(baselines_folder), "--format", "methods"]) == 0
    card = capsys.readouterr().out
    assert "not recorded / not recorded" not in card and "classical baselines only" in card
    words = _command(card, "baselines")
    args = build_parser().parse_args(words[1:])
    assert args.methods == "blur,pca-8" and args.set == ["split_seed=3"] and not Path(args.data).is_absolute()
    assert f"| Delivered: {chosen_of(baselines_folder).trial_id} |" in card and str(baselines_folder) not in card


def test_strings_from_a_results_folder_cannot_run_as_latex_or_close_a_code_block(baselines_folder, capsys):
    record = {
        "sweep": r"x}\input{/etc/passwd}",
        "command": "hamtune sweep a.yaml --set 'x=\\end{verbatim}\\input{/etc/passwd}' --set 'y=```\n# heading'",
        "space": {},
    }
    (baselines_folder / "sweep.json").write_text(json.dumps(record))
    assert main(["report", str(baselines_folder), "--format", "latex"]) == 0
    latex = capsys.readouterr().out
    assert r"\input" not in latex and r"\end{verbatim}" not in latex and r"\textbackslash{}input\{/etc/passwd\}" in latex
    assert main(["report", str(baselines_folder), "--format", "methods"]) == 0
    card = capsys.readouterr().out
    block = card[card.index("## Commands that reproduce it") :]
    fence = block.splitlines()[2].removesuffix("bash")
    assert len(fence) > 3 and block.count(fence) == 2  # one block, its fence longer than the ``` inside


def test_floor_rows_are_scored_once_per_split(floored, tmp_path):
    from hamtune.sweep.floor import score_floor

    copy = tmp_path / "copy"
    shutil.copytree(floored[0], copy, ignore=shutil.ignore_patterns("tune", "checkpoints"))
    assert score_floor(copy) == [] and score_floor(copy, enabled=False) == []
