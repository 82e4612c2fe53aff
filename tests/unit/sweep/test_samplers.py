"""Every sampler a space may name survives Tune's pickling: a freshly built Tuner is saved, restored from
disk and round-tripped through pickle, and the searcher it brings back keeps suggesting from the same study.
(Optuna 5.1's NSGAIISampler holds a lock and does not pickle: hamtune pickles the sampler's spec instead.)"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from conftest import TINY_SPACE

from hamtune.errors import HamtuneError
from hamtune.sweep.samplers import MULTI_OBJECTIVE_SAMPLERS, SAMPLERS
from hamtune.sweep.space import parse_space
from hamtune.sweep.tune.runner import make_searcher

GRID_PARAMS = {"kind": {"choice": ["ae", "vae"]}, "lr": {"choice": [1e-3, 2e-3]}}
TWO_OBJECTIVES = [{"metric": "val_ssim", "mode": "max"}, {"metric": "val_auroc", "mode": "max"}]
CASES = [(name, "single") for name in SAMPLERS] + [(name, "multi") for name in MULTI_OBJECTIVE_SAMPLERS]


def space_for(name: str, objectives: str, path: Path):
    raw = {**TINY_SPACE, "data": "synthetic", "sampler": {"name": name}}
    if name == "grid":
        raw.update(params=GRID_PARAMS, points_to_evaluate=[])
    if objectives == "multi":
        raw.update(objective=TWO_OBJECTIVES)
    return parse_space(raw, path)


def in_space(space, config: dict) -> bool:
    return all(p.name in config or not p.applies(config) for p in space.params) and all(
        config[p.name] in p.values if p.kind == "choice" else p.low <= config[p.name] <= p.high for p in space.params if p.name in config
    )


@pytest.mark.parametrize(("name", "objectives"), CASES, ids=[f"{n}-{o}" for n, o in CASES])
def test_every_sampler_survives_a_tuner_save_restore_and_pickle(tmp_path, name, objectives):
    from ray import tune

    space = space_for(name, objectives, tmp_path / "space.yaml")
    searcher = make_searcher(space, "study", tmp_path)
    first = searcher.suggest("t1")
    tune.Tuner(
        lambda config: None,
        tune_config=tune.TuneConfig(search_alg=searcher, num_samples=4),
        run_config=tune.RunConfig(name="tune", storage_path=str(tmp_path)),
    )  # pickles the searcher to tuner.pkl
    restored = tune.Tuner.restore(str(tmp_path / "tune"), lambda config: None)._local_tuner._tune_config.search_alg
    for again in (restored, pickle.loads(pickle.dumps(searcher))):
        assert type(again.study.sampler) is type(searcher.study.sampler)
        assert again.study_trial("t1").params == searcher.study_trial("t1").params
        config = again.suggest(f"t2-{id(again)}")
        assert in_space(space, config) and in_space(space, first)
    study = pickle.loads(pickle.dumps(searcher)).study
    assert len(study.trials) == 3 and study.directions == searcher.study.directions


def test_a_savedmake_searcher_restores_into_a_fresh_one(tmp_path):
    space = space_for("nsga2", "multi", tmp_path / "space.yaml")
    searcher = make_searcher(space, "study", tmp_path)
    searcher.suggest("t1")
    searcher.save(str(tmp_path / "searcher.pkl"))
    fresh = make_searcher(space, "study", tmp_path)
    fresh.restore(str(tmp_path / "searcher.pkl"))
    assert fresh.study_trial("t1").params == searcher.study_trial("t1").params


def test_a_sampler_rebuilt_on_resume_draws_past_the_trials_it_already_made(tmp_path):
    import optuna

    from hamtune.sweep.space import sampler_spec

    spec, unit = sampler_spec(space_for("random", "single", tmp_path / "space.yaml")), optuna.distributions.FloatDistribution(0, 1)
    draws = [spec.build(resumed).sample_independent(None, None, "x", unit) for resumed in (0, 0, 3)]
    assert draws[0] == draws[1] != draws[2]


def test_samplers_that_cannot_optimise_several_objectives_are_refused(tmp_path):
    for name in set(SAMPLERS) - set(MULTI_OBJECTIVE_SAMPLERS):
        with pytest.raises(HamtuneError, match=f"{name} cannot optimise several objectives"):
            space_for(name, "multi", tmp_path / "space.yaml")
