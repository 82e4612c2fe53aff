"""The confirm stage of a sweep: after the search, the best configurations by validation run more seeds.

One trial is one seed's draw, and on real dermoscopy a configuration's test AUROC moves by several points
between seeds: choosing the best single trial chases that noise. With `confirm: {top: K, seeds: N}` the
searcher, once every search trial has ended, hands Tune K x N more trials: the K configurations with the
best delivered validation objective, each with N new seeds. They are ordinary trials (same trainable,
resources, packing, checkpoints and resume); their config carries `CONFIRM_KEY` (the trial id of the
search trial they repeat), which the trainable strips and the recorder writes as the row's `config_id`.
ASHA does not stop them: a seed is not a candidate to prune. The plan is kept in `confirm.json`.
This module is the plan (`make_plan`), Ray-free; the searcher and the scheduler that carry it out are
sweep/tune/confirm.py.

Where the space's `fuse` setting allows it (train/fused.py: `why_not_fused`), a configuration's N seeds are
one trial instead of N: its config also carries `GROUP_KEY` (the seeds), the trainable trains them as one
grouped model, and the recorder writes one row per seed (trial id `<trial>-s<seed>`, `member_id`).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from hamtune.errors import HamtuneError
from hamtune.files import atomic_file
from hamtune.results.layout import PLAN
from hamtune.train.config import TrainConfig, build_config
from hamtune.train.fused import why_not_fused

CONFIRM_KEY = "confirm_of"
GROUP_KEY = "fused_seeds"


def new_seeds(original: int, n: int) -> list[int]:
    """original+1 ... original+n: distinct from the original and the same on every rerun."""
    return [original + i for i in range(1, n + 1)]


def split_config(config: dict) -> tuple[dict, str | None]:
    """A Tune config as (TrainConfig values, the search trial it confirms or None); a fused group's values
    are its first seed's (`group_seeds` has them all)."""
    values = dict(config)
    values.pop(GROUP_KEY, None)
    return values, values.pop(CONFIRM_KEY, None)


def trial_config(values: dict, data_manifest: dict) -> TrainConfig:
    """The config a trial runs: sampled values over any preset, at the prepared data's own preprocessing
    (a confirm trial's markers are not TrainConfig values)."""
    return build_config(split_config(values)[0], where="trial config").at_preprocessing(data_manifest)


def group_seeds(config: dict) -> list[int] | None:
    """The seeds a fused confirm trial trains as one group, or None for a trial of one model."""
    seeds = config.get(GROUP_KEY)
    return [int(s) for s in seeds] if seeds else None


def member_id(trial_id: str, seed: int) -> str:
    """The results row id of one seed of a fused trial."""
    return f"{trial_id}-s{seed}"


def choose(values: dict[str, float], top: int, mode: str) -> list[str]:
    """The `top` trial ids with the best finite values (ties: the earlier trial)."""
    finite = [(trial_id, v) for trial_id, v in values.items() if isinstance(v, (int, float)) and math.isfinite(v)]
    finite.sort(key=lambda item: -item[1] if mode == "max" else item[1])  # stable: ties keep the order trials were suggested in
    return [trial_id for trial_id, _ in finite[:top]]


def make_plan(
    searched: dict[str, dict],
    ended: dict[str, float],
    *,
    metric: str,
    mode: str,
    top: int,
    seeds: int,
    fuse: str = "off",
    on_cuda: bool = False,
    manifest: dict | None = None,
    results_path: str = "",
) -> list[dict]:
    """The confirm trials, in the order they are handed to Tune: the `top` search trials by delivered objective
    (`ended`), each on `seeds` new seeds (one fused trial where `fuse` allows); written to confirm.json under
    `results_path` when there is one."""
    chosen = choose(ended, top, mode)
    plan, fused = [], {}
    for trial_id in chosen:
        trial_seeds = new_seeds(int(searched[trial_id].get("seed", 0)), seeds)
        trials = [{**searched[trial_id], "seed": seed, CONFIRM_KEY: trial_id} for seed in trial_seeds]
        fused[trial_id] = _why_not_fused(trials, fuse, on_cuda, manifest or {})
        plan += [{**trials[0], GROUP_KEY: trial_seeds}] if not fused[trial_id] else trials
    if results_path:
        with atomic_file(Path(results_path) / PLAN) as tmp:
            tmp.write_text(
                json.dumps(
                    {
                        "metric": metric,
                        "mode": mode,
                        "top": top,
                        "seeds": seeds,
                        "configurations": {trial_id: ended[trial_id] for trial_id in chosen},
                        "trials": len(chosen) * seeds,
                        "tune_trials": len(plan),
                        "fuse": fuse,
                        "not_fused": {trial_id: why for trial_id, why in fused.items() if why},
                    },
                    indent=2,
                )
            )
    return plan


def _why_not_fused(trials: list[dict], fuse: str, on_cuda: bool, manifest: dict) -> str:
    """'' when these seeds of one configuration train as one group under the space's `fuse` setting."""
    try:
        configs = [trial_config(t, manifest) for t in trials]
    except HamtuneError as exc:
        return str(exc)
    return why_not_fused(fuse, configs, on_cuda)
