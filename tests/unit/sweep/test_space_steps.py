"""parse_space's steps, each on its own: overrides, fixed values, parameters, strategy, resources, points, budget."""

from __future__ import annotations

from pathlib import Path

import pytest

from hamtune.errors import HamtuneError
from hamtune.sweep.space import (
    _Checker,
    budget,
    data_specs,
    fixed_values,
    merge_overrides,
    search_params,
    search_strategy,
    starting_points,
    trial_resources,
)

CHECK = _Checker(Path("space.yaml"))


def test_a_config_override_is_fixed_and_no_longer_searched():
    raw, fixed, params = merge_overrides(CHECK, {"params": {"lr": {"float": [1e-4, 1e-2]}}}, {"lr": "0.01", "num_samples": 3})
    assert fixed == {"lr": "0.01"} and params == {} and raw["num_samples"] == 3
    with pytest.raises(HamtuneError, match="--set widht: neither a search-space key"):
        merge_overrides(CHECK, {}, {"widht": 1})
    with pytest.raises(HamtuneError, match="space.yaml: nmae: unknown key"):
        merge_overrides(CHECK, {"nmae": "x"}, None)


def test_fixed_values_take_protocol_seed_and_epochs_from_the_top_level():
    fixed, max_epochs = fixed_values(CHECK, {"protocol": "nevus", "seed": 3, "max_epochs": 4}, {"lr": "0.01"})
    assert fixed == {"lr": 0.01, "protocol": "nevus", "seed": 3, "epochs": 4} and max_epochs == 4


def test_a_parameter_is_not_also_fixed_and_conditions_look_back():
    params = search_params(CHECK, {"kind": {"choice": ["ae", "vae"]}, "beta": {"float": [0.1, 1.0], "when": {"kind": "vae"}}}, {})
    assert [p.name for p in params] == ["kind", "beta"] and params[1].when == {"kind": ("vae",)}
    with pytest.raises(HamtuneError, match="params.lr: is also a fixed value"):
        search_params(CHECK, {"lr": {"float": [0.1, 1.0]}}, {"lr": 0.1})


def test_strategy_resources_points_budget_and_data():
    params = search_params(CHECK, {"kind": {"choice": ["ae", "vae"]}}, {})
    sampler, scheduler = search_strategy(CHECK, {"sampler": "grid"}, (("val_auroc", "max"),), params)
    assert sampler == {"name": "grid"} and scheduler == {"name": "none"}
    with pytest.raises(HamtuneError, match="early stopping"):
        search_strategy(CHECK, {"scheduler": "asha"}, (("val_auroc", "max"), ("val_mse", "min")), params)
    with pytest.raises(HamtuneError, match="scheduler.grace_period: 5 is more than max_epochs"):
        search_strategy(CHECK, {"scheduler": {"name": "asha", "grace_period": 5}}, (("val_auroc", "max"),), params, 3)
    assert trial_resources(CHECK, None) == {"cpus": 1.0, "gpus": 0.0}
    assert starting_points(CHECK, [{"kind": "ae"}], params) == ({"kind": "ae"},)
    with pytest.raises(HamtuneError, match=r"points_to_evaluate\[0\].lr: not a searchable parameter"):
        starting_points(CHECK, [{"lr": 0.1}], params)
    assert budget(CHECK, {}) == (10, None) and budget(CHECK, {"num_samples": 4, "max_concurrent": 2}) == (4, 2)
    assert data_specs(CHECK, {}) == ("synthetic", None)
