"""sweep.json's command runs the sweep again: every option and override as the caller gave it."""

from __future__ import annotations

import shlex
from pathlib import Path

import yaml
from conftest import TINY_SPACE

from hamtune.cli import build_parser
from hamtune.sweep.provenance import sweep_command
from hamtune.sweep.space import TOP_LEVEL, parse_space
from hamtune.sweep.tune.runner import SweepOptions


def test_the_recorded_command_parses_back_to_every_option_and_override_given():
    overrides = {
        "lr": "0.002",
        "max_epochs": 3,
        "sampler": {"name": "random"},
        "confirm": {"top": 1, "seeds": 2},
        "floor": False,
        "augment": "dihedral",
    }
    space = parse_space({**TINY_SPACE, "data": "synthetic", "points_to_evaluate": []}, Path("spaces/tiny.yaml"), overrides)
    options = SweepOptions(
        name="q",
        results_root=Path("out"),
        address="10.0.0.1:6379",
        log_to=("mlflow", "tensorboard"),
        gpus_per_trial=0.25,
        num_cpus=3,
        storage="s3://bucket/tune",
        keep_checkpoints="all",
        overrides=overrides,
    )
    args = build_parser().parse_args(shlex.split(sweep_command(space, "q", 4, space.data, options))[1:])
    assert args.set == ["lr=0.002", "max_epochs=3", 'sampler={"name": "random"}', "augment=dihedral"]
    assert (args.confirm_top, args.confirm_seeds, args.no_floor, args.address) == (1, 2, True, "10.0.0.1:6379")
    assert args.log_to == ["mlflow", "tensorboard"] and args.gpus_per_trial == 0.25 and args.num_cpus == 3
    assert (args.storage, args.keep_checkpoints, args.results, args.num_samples, args.data) == (
        "s3://bucket/tune",
        "all",
        "out",
        4,
        "synthetic",
    )
    again = parse_space(
        {**TINY_SPACE, "data": "synthetic", "points_to_evaluate": []},
        Path("spaces/tiny.yaml"),
        {
            **{k: yaml.safe_load(v) if k in TOP_LEVEL else v for k, v in (s.split("=", 1) for s in args.set)},
            "confirm": {"top": 1, "seeds": 2},
            "floor": False,
        },
    )  # as `hamtune sweep` reads --set
    assert again.sampler == space.sampler and again.fixed == space.fixed and not again.floor


def test_a_confirm_stage_that_keeps_its_best_seeds_is_recorded_and_read_back():
    overrides = {"confirm": {"top": 1, "seeds": 2, "keep": 2}}
    space = parse_space({**TINY_SPACE, "data": "synthetic", "points_to_evaluate": []}, Path("spaces/tiny.yaml"), overrides)
    options = SweepOptions(name="q", results_root=Path("results"), overrides=overrides)
    args = build_parser().parse_args(shlex.split(sweep_command(space, "q", 4, space.data, options))[1:])
    again = parse_space(
        {**TINY_SPACE, "data": "synthetic", "points_to_evaluate": []},
        Path("spaces/tiny.yaml"),
        {k: yaml.safe_load(v) for k, v in (s.split("=", 1) for s in args.set)},
    )
    assert (
        (space.confirm_top, space.confirm_seeds, space.confirm_keep)
        == (again.confirm_top, again.confirm_seeds, again.confirm_keep)
        == (1, 2, 2)
    )
