"""Search spaces declared in YAML, validated once (errors name the file and key), turned into Optuna.

A space file holds: the data, the objective(s), the sampler, the scheduler, the budget, the
resources per trial, fixed TrainConfig values, searchable parameters (with `when:` conditions on
earlier ones) and starting points. Everything is checked before Ray starts.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from hamtune.config_fields import MACHINE
from hamtune.errors import HamtuneError, UsageError, first_line
from hamtune.files import read_text
from hamtune.paths import safe_name
from hamtune.results.layout import DEFAULT_OBJECTIVE
from hamtune.sweep.cluster import runtime_env
from hamtune.sweep.samplers import MULTI_OBJECTIVE_SAMPLERS, SAMPLERS, SamplerSpec
from hamtune.train.config import FUSE, RULE_KEYS, TrainConfig, field_value
from hamtune.yamlfile import DuplicateKey, load_yaml

TOP_LEVEL = {
    "name",
    "description",
    "data",
    "test_data",
    "protocol",
    "seed",
    "objective",
    "sampler",
    "scheduler",
    "num_samples",
    "max_epochs",
    "max_concurrent",
    "resources",
    "fixed",
    "params",
    "points_to_evaluate",
    "max_failures",
    "log_to",
    "confirm",
    "fuse",
    "floor",
    "runtime_env",
}
OBJECTIVE_METRICS = ("val_auroc", "val_auprc", "val_f1", "val_loss", "val_mse", "val_psnr", "val_ssim", "val_elbo", "train_loss")


def tune_metric(metric: str) -> str:
    """The name under which Tune, Optuna and ASHA see an objective: its value for the model the trial
    would deliver if it ended now (its best validation epoch so far), the value its results row shows."""
    return f"best_{metric}"


NOT_SEARCHABLE = ("epochs", *MACHINE)
TRACKERS = ("mlflow", "wandb", "tensorboard")  # experiment trackers a sweep can log to (sweep/trackers.py)


@dataclass(frozen=True)
class Param:
    """One searchable parameter: a categorical choice or an int/float range, optionally conditional."""

    name: str
    kind: str  # choice | int | float
    values: tuple = ()
    low: float = 0.0
    high: float = 0.0
    log: bool = False
    step: float | None = None
    when: dict = field(default_factory=dict)

    def applies(self, chosen: dict) -> bool:
        return all(chosen.get(key) in allowed for key, allowed in self.when.items())

    def suggest(self, trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.name, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.name, int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return trial.suggest_float(self.name, self.low, self.high, log=self.log, step=self.step)

    def distribution(self):
        """The Optuna distribution this parameter declares (what the study and importance use)."""
        import optuna.distributions as d

        if self.kind == "choice":
            return d.CategoricalDistribution(list(self.values))
        if self.kind == "int":
            return d.IntDistribution(int(self.low), int(self.high), log=self.log, step=int(self.step or 1))
        return d.FloatDistribution(self.low, self.high, log=self.log, step=self.step)


@dataclass(frozen=True)
class DefineByRun:
    """The Optuna define-by-run function (picklable, Tune saves it): suggests the parameters that
    apply given earlier choices and returns the fixed values for Tune to add to the config."""

    params: tuple[Param, ...]
    fixed: dict

    def __call__(self, trial) -> dict:
        chosen = dict(self.fixed)
        for param in self.params:
            if param.applies(chosen):
                chosen[param.name] = param.suggest(trial)
        return self.fixed


@dataclass(frozen=True)
class SearchSpace:
    """A validated space file: plain data, handed to the sweep runner."""

    path: Path
    name: str
    data: str
    test_data: str | None
    objectives: tuple[tuple[str, str], ...]
    sampler: dict
    scheduler: dict
    num_samples: int
    max_epochs: int
    max_concurrent: int | None
    max_failures: int
    resources: dict
    fixed: dict
    params: tuple[Param, ...]
    points: tuple[dict, ...]
    log_to: tuple[str, ...] = ()  # experiment trackers (sweep/trackers.py)
    confirm_top: int = 0  # after the search, the best configurations by validation that run more seeds (sweep/confirm.py)
    confirm_seeds: int = 0  # new seeds per confirmed configuration
    confirm_keep: int = 0  # the delivered seed ensemble's members: the seeds best on validation (0: all of them)
    fuse: str = "auto"  # the confirm stage's seeds of a configuration as one grouped model in one trial (train/fused.py)
    floor: bool = True  # score the non-learned floor (blur, down/up-sampling, PCA) into the results when the sweep ends
    runtime_env: dict | None = None  # Ray's runtime_env for a cluster's workers (sweep/cluster.py)

    @property
    def multi_objective(self) -> bool:
        return len(self.objectives) > 1

    @property
    def confirm_trials(self) -> int:
        """Trials the confirm stage adds after num_samples (at most: fewer when fewer configurations finished)."""
        return self.confirm_top * self.confirm_seeds

    def define_by_run(self) -> DefineByRun:
        return DefineByRun(self.params, dict(self.fixed))

    def distributions(self) -> dict[str, str]:
        """Each searched parameter's declared distribution, as Optuna's JSON."""
        from optuna.distributions import distribution_to_json

        return {p.name: distribution_to_json(p.distribution()) for p in self.params}

    def grid(self) -> dict[str, list]:
        return {p.name: list(p.values) for p in self.params}


class _Checker:
    """Collects the file name into every error so a user knows where to look."""

    def __init__(self, path: Path):
        self.path = path

    def fail(self, key: str, message: str) -> HamtuneError:
        return HamtuneError(f"{self.path}: {key}: {message}")

    def mapping(self, value, key: str) -> dict:
        if not isinstance(value, dict):
            raise self.fail(key, f"expected a mapping, got {type(value).__name__}")
        return value

    def number(self, value, key: str, kind: type = float, low: float | None = None) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise self.fail(key, f"expected a number, got {value!r}")
        if kind is int and value != int(value):
            raise self.fail(key, f"expected a whole number, got {value!r}")
        if low is not None and value < low:
            raise self.fail(key, f"must be at least {low}, got {value!r}")
        return kind(value)

    def config_value(self, name: str, value, key: str):
        try:
            return field_value(name, value, key)
        except HamtuneError as exc:
            raise self.fail(key, str(exc).split(": ", 1)[-1]) from None


def _check_condition(check: _Checker, key: str, target, allowed: tuple) -> None:
    """A condition on a choice must name values among its choices: a typo would silently never match."""
    if isinstance(target, Param) and target.kind == "choice":
        missing = [v for v in allowed if v not in target.values]
        if missing:
            raise check.fail(
                key,
                f"{', '.join(map(repr, missing))} is not among params.{target.name}'s choices "
                f"({', '.join(map(repr, target.values))}), so the condition could never hold",
            )


def _param(check: _Checker, name: str, spec, earlier: dict) -> Param:
    key = f"params.{name}"
    if name not in TrainConfig.__dataclass_fields__:
        raise check.fail(key, f"not a TrainConfig field; valid: {', '.join(TrainConfig.__dataclass_fields__)}")
    if name in NOT_SEARCHABLE:
        raise check.fail(key, "is not searchable (set max_epochs or fixed values instead)")
    spec = check.mapping(spec, key)
    kinds = [k for k in ("choice", "int", "float") if k in spec]
    extra = set(spec) - {"choice", "int", "float", "log", "step", "when"}
    if len(kinds) != 1 or extra:
        raise check.fail(key, "give exactly one of choice: [...], int: [low, high], float: [low, high] (plus log, step, when)")
    kind = kinds[0]
    when = {}
    for other, allowed in check.mapping(spec.get("when", {}), f"{key}.when").items():
        if other not in earlier:
            raise check.fail(f"{key}.when.{other}", "a condition may only refer to a parameter declared earlier or a fixed value")
        when[other] = tuple(allowed) if isinstance(allowed, list) else (allowed,)
        _check_condition(check, f"{key}.when.{other}", earlier[other], when[other])
    if kind == "choice":
        values = spec["choice"]
        if not isinstance(values, list) or not values:
            raise check.fail(f"{key}.choice", "expected a non-empty list")
        values = tuple(check.config_value(name, v, f"{key}.choice") for v in values)
        return Param(name, "choice", values=values, when=when)
    bounds = spec[kind]
    if not isinstance(bounds, list) or len(bounds) != 2:
        raise check.fail(f"{key}.{kind}", "expected [low, high]")
    low, high = (check.number(b, f"{key}.{kind}", int if kind == "int" else float) for b in bounds)
    if not low < high:
        raise check.fail(f"{key}.{kind}", f"low must be below high, got [{low}, {high}]")
    for bound in (low, high):
        check.config_value(name, bound, f"{key}.{kind}")
    log = spec.get("log", False)
    if not isinstance(log, bool):
        raise check.fail(f"{key}.log", "expected true or false")
    if log and low <= 0:
        raise check.fail(f"{key}.log", "a log scale needs low > 0")
    step = spec.get("step")
    if step is not None:
        step = check.number(step, f"{key}.step", low=0)
        if log or step <= 0:
            raise check.fail(f"{key}.step", "a step must be positive and cannot be combined with log")
    return Param(name, kind, low=low, high=high, log=log, step=step, when=when)


def _objectives(check: _Checker, spec) -> tuple[tuple[str, str], ...]:
    items = spec if isinstance(spec, list) else [spec]
    if not items:
        raise check.fail("objective", "expected {metric, mode} or a list of them")
    out = []
    for i, item in enumerate(items):
        key = "objective" if not isinstance(spec, list) else f"objective[{i}]"
        item = check.mapping(item, key)
        metric, mode = item.get("metric"), item.get("mode", "max")
        if set(item) - {"metric", "mode"}:
            raise check.fail(key, f"unknown key(s) {', '.join(sorted(set(item) - {'metric', 'mode'}))}")
        if metric not in OBJECTIVE_METRICS:
            hint = " (test metrics are never an objective: the test split stays unseen)" if str(metric).startswith("test_") else ""
            raise check.fail(f"{key}.metric", f"{metric!r} is not one of {', '.join(OBJECTIVE_METRICS)}{hint}")
        if mode not in ("max", "min"):
            raise check.fail(f"{key}.mode", f"expected max or min, got {mode!r}")
        out.append((metric, mode))
    return tuple(out)


SAMPLER_OPTIONS: dict[str, dict[str, type]] = {name: kind.options for name, kind in SAMPLERS.items()}
SCHEDULER_OPTIONS: dict[str, dict[str, type]] = {
    "asha": {"grace_period": int, "reduction_factor": float},
    "none": {},
}


def _options(check: _Checker, spec, key: str, known: dict[str, dict[str, type]]) -> dict:
    if isinstance(spec, str) or spec is None:
        spec = {"name": spec or "none"}
    spec = dict(check.mapping(spec, key))
    if not isinstance(spec.get("name"), str) or spec["name"] not in known:
        raise check.fail(f"{key}.name", f"expected one of {', '.join(known)}, got {spec.get('name')!r}")
    allowed = known[spec["name"]]
    for option, value in spec.items():
        if option == "name":
            continue
        if option not in allowed:
            raise check.fail(f"{key}.{option}", f"unknown option; valid: {', '.join(allowed) or 'none'}")
        spec[option] = check.number(value, f"{key}.{option}", allowed[option], low=0)
    return spec


def merge_overrides(check: _Checker, raw, overrides: dict | None) -> tuple[dict, dict, dict]:
    """The file's top-level mapping, its `fixed` values and its `params`, with the command line's overrides
    applied: a space key replaces the file's value; a TrainConfig field becomes a fixed value (no longer searched)."""
    raw = dict(check.mapping(raw, "top level"))
    fixed = dict(check.mapping(raw.get("fixed") or {}, "fixed"))
    params = dict(check.mapping(raw.get("params") or {}, "params"))
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key == "fixed":
            fixed = dict(check.mapping(value or {}, "fixed"))
        elif key == "params":
            params = dict(check.mapping(value or {}, "params"))
        elif key in TOP_LEVEL:
            raw[key] = value
        elif key in TrainConfig.__dataclass_fields__:
            try:  # a bad value given on the command line is a usage error (exit 2), as `train --set` reports it
                field_value(key, value, "--set")
            except UsageError:
                raise
            except HamtuneError as exc:
                raise UsageError(str(exc)) from None
            fixed[key] = value
            params.pop(key, None)
        else:
            raise UsageError(f"--set {key}: neither a search-space key ({', '.join(sorted(TOP_LEVEL))}) nor a TrainConfig field")
    unknown = set(raw) - TOP_LEVEL
    if unknown:
        raise check.fail(", ".join(sorted(unknown)), f"unknown key; valid top-level keys: {', '.join(sorted(TOP_LEVEL))}")
    return raw, fixed, params


def fixed_values(check: _Checker, raw: dict, fixed: dict) -> tuple[dict, int]:
    """The validated fixed TrainConfig values (top-level protocol and seed included, epochs = max_epochs) and max_epochs."""
    fixed = dict(fixed)
    for key in ("protocol", "seed"):
        if key in raw:
            fixed[key] = raw[key]
    max_epochs = int(check.number(raw.get("max_epochs", 10), "max_epochs", int, low=1))
    if "epochs" in fixed and fixed["epochs"] != max_epochs:  # a sweep's trials run max_epochs: never ignore epochs silently
        raise check.fail(
            "epochs",
            f"{fixed['epochs']!r} conflicts with max_epochs {max_epochs}, which a sweep's trials "
            "run; set max_epochs instead (--set max_epochs=N)",
        )
    fixed["epochs"] = max_epochs
    return {name: check.config_value(name, value, f"fixed.{name}") for name, value in fixed.items()}, max_epochs


def search_params(check: _Checker, params: dict, fixed: dict) -> tuple[Param, ...]:
    """The searchable parameters in file order; a condition may refer to a fixed value or an earlier parameter."""
    out: list[Param] = []
    for name, spec in params.items():
        if name in fixed:
            raise check.fail(f"params.{name}", "is also a fixed value; keep one")
        out.append(_param(check, str(name), spec, {**fixed, **{p.name: p for p in out}}))
    return tuple(out)


def combinations(check: _Checker, fixed: dict, params: tuple[Param, ...]) -> None:
    """Every trial the space can sample must be a valid TrainConfig. The rules between fields (train/config.py:
    RULE_KEYS) are checked on every combination of the values their fields can take (a range by its two ends, a
    conditional parameter only where its condition holds), so a broken one is named when the file is read, with the
    sampled values that break it (none: the fixed values alone do)."""
    involved = [p for p in params if p.name in RULE_KEYS]
    conditions = {key for p in involved for key in p.when}
    involved = [p for p in params if p.name in RULE_KEYS or p.name in conditions]
    ends = [p.values if p.kind == "choice" else (p.low, p.high) for p in involved]
    for values in itertools.product(*ends):
        chosen: dict = {}
        for param, value in zip(involved, values):
            if param.applies({**fixed, **chosen}):
                chosen[param.name] = value
        reason = _broken({**fixed, **chosen})
        if reason:
            cause = [f"{k}={v}" for k, v in chosen.items() if not _broken({**fixed, **{n: w for n, w in chosen.items() if n != k}})]
            raise check.fail("params" if cause else "fixed", reason + (f"; a trial can sample {', '.join(cause)}" if cause else ""))


def _broken(values: dict) -> str:
    """Why these values make no valid TrainConfig, or ''."""
    try:
        TrainConfig.from_dict(values)
    except HamtuneError as exc:
        return str(exc).split(": ", 1)[-1]
    return ""


def search_strategy(
    check: _Checker, raw: dict, objectives: tuple, params: tuple[Param, ...], max_epochs: int | None = None
) -> tuple[dict, dict]:
    """The sampler and the scheduler, refused where they cannot serve the objectives, the parameters or the epochs."""
    sampler = _options(check, raw.get("sampler", "tpe"), "sampler", SAMPLER_OPTIONS)
    scheduler = _options(check, raw.get("scheduler", "none"), "scheduler", SCHEDULER_OPTIONS)
    if len(objectives) > 1 and sampler["name"] not in MULTI_OBJECTIVE_SAMPLERS:
        raise check.fail("sampler.name", f"{sampler['name']} cannot optimise several objectives; use {', '.join(MULTI_OBJECTIVE_SAMPLERS)}")
    if len(objectives) > 1 and scheduler["name"] != "none":
        raise check.fail("scheduler", "early stopping (asha) needs a single objective; use scheduler: none")
    if sampler["name"] == "grid" and any(p.kind != "choice" or p.when for p in params):
        raise check.fail("sampler.name", "grid needs every parameter to be an unconditional choice: [...]")
    grace = scheduler.get("grace_period", 1)
    if scheduler["name"] == "asha" and max_epochs is not None and isinstance(grace, (int, float)) and grace > max_epochs:
        raise check.fail("scheduler.grace_period", f"{grace} is more than max_epochs ({max_epochs}): no trial would reach a rung")
    return sampler, scheduler


def trial_resources(check: _Checker, spec) -> dict:
    """CPUs and GPUs per trial."""
    resources = dict(check.mapping(spec or {}, "resources"))
    if set(resources) - {"cpus", "gpus"}:
        raise check.fail("resources", "only cpus and gpus can be set")
    return {
        "cpus": check.number(resources.get("cpus", 1), "resources.cpus", float, low=0.01),
        "gpus": check.number(resources.get("gpus", 0), "resources.gpus", float, low=0),
    }


def starting_points(check: _Checker, spec, params: tuple[Param, ...]) -> tuple[dict, ...]:
    """points_to_evaluate: each a mapping of searchable parameters to valid values."""
    points, raw_points = [], spec or []
    if not isinstance(raw_points, list):
        raise check.fail("points_to_evaluate", "expected a list of {parameter: value} mappings")
    names = {p.name for p in params}
    for i, point in enumerate(raw_points):
        point = check.mapping(point, f"points_to_evaluate[{i}]")
        for name, value in point.items():
            if name not in names:
                raise check.fail(f"points_to_evaluate[{i}].{name}", "not a searchable parameter of this space")
            check.config_value(name, value, f"points_to_evaluate[{i}].{name}")
        points.append(dict(point))
    return tuple(points)


def budget(check: _Checker, raw: dict) -> tuple[int, int | None]:
    """num_samples and max_concurrent (None: as many as fit)."""
    num_samples = int(check.number(raw.get("num_samples", 10), "num_samples", int, low=1))
    max_concurrent = raw.get("max_concurrent")
    if max_concurrent is not None:
        max_concurrent = int(check.number(max_concurrent, "max_concurrent", int, low=1))
    return num_samples, max_concurrent


def data_specs(check: _Checker, raw: dict) -> tuple[str, str | None]:
    """The data to sweep on and the optional external test set, as the command line names them."""
    data = raw.get("data", "synthetic")
    if not isinstance(data, str) or not data:
        raise check.fail("data", "expected 'synthetic', a prepared cache folder, or a source path")
    test_data = raw.get("test_data")
    if test_data is not None and not isinstance(test_data, str):
        raise check.fail("test_data", "expected a path")
    return data, test_data


def parse_space(raw: dict, path: Path, overrides: dict | None = None) -> SearchSpace:
    """Validate a loaded YAML mapping (plus CLI overrides) into a SearchSpace, one step per part of the file."""
    check = _Checker(path)
    if not raw:
        raise HamtuneError(f"{path}: the space is empty; a search space names at least its params (see search_spaces/quick.yaml)")
    raw, fixed, params_raw = merge_overrides(check, raw, overrides)
    fixed, max_epochs = fixed_values(check, raw, fixed)
    params = search_params(check, params_raw, fixed)
    combinations(check, fixed, params)
    objectives = _objectives(check, raw.get("objective", dict(zip(("metric", "mode"), DEFAULT_OBJECTIVE))))
    sampler, scheduler = search_strategy(check, raw, objectives, params, max_epochs)
    resources = trial_resources(check, raw.get("resources"))
    points = starting_points(check, raw.get("points_to_evaluate"), params)
    num_samples, max_concurrent = budget(check, raw)
    data, test_data = data_specs(check, raw)
    name = str(raw.get("name") or path.stem)
    try:
        safe_name(name, "name")
    except HamtuneError as exc:
        raise check.fail("name", str(exc).split(": ", 1)[-1]) from None
    return SearchSpace(
        path=path,
        name=name,
        data=data,
        test_data=test_data,
        objectives=objectives,
        sampler=sampler,
        scheduler=scheduler,
        num_samples=num_samples,
        max_epochs=max_epochs,
        max_concurrent=max_concurrent,
        max_failures=int(check.number(raw.get("max_failures", 2), "max_failures", int, low=0)),
        resources=resources,
        fixed=fixed,
        params=params,
        points=points,
        log_to=trackers(check, raw.get("log_to")),
        **confirm_stage(check, raw.get("confirm"), objectives, num_samples),
        fuse=fuse_setting(check, raw.get("fuse", "auto")),
        floor=floor_setting(check, raw.get("floor", True)),
        runtime_env=runtime_env(raw["runtime_env"], f"{path}: runtime_env", path.parent) if raw.get("runtime_env") is not None else None,
    )


def confirm_stage(check: _Checker, spec, objectives: tuple, num_samples: int) -> dict:
    """`confirm: {top: K, seeds: N, keep: M}`: after the search, the K best configurations by the validation objective
    each run N new seeds, so the sweep chooses on a mean over seeds rather than on one seed's draw; the chosen one is
    delivered as the ensemble of its seeds (with `keep`, of its M seeds best on validation)."""
    if spec is None:
        return {}
    spec = dict(check.mapping(spec, "confirm"))
    if set(spec) - {"top", "seeds", "keep"}:
        raise check.fail("confirm", f"only top, seeds and keep can be set, got {', '.join(sorted(set(spec) - {'top', 'seeds', 'keep'}))}")
    top = int(check.number(spec.get("top", 3), "confirm.top", int, low=0))
    seeds = int(check.number(spec.get("seeds", 5), "confirm.seeds", int, low=0))
    keep = int(check.number(spec.get("keep", 0), "confirm.keep", int, low=0))
    if keep and not 2 <= keep <= seeds + 1:
        raise check.fail("confirm.keep", f"{keep}: an ensemble keeps 2 to {seeds + 1} seeds (the search's own and {seeds} new)")
    if top and seeds and len(objectives) > 1:
        raise check.fail("confirm", "the confirm stage ranks configurations by one objective; a multi-objective space cannot have one")
    if top > num_samples:
        raise check.fail("confirm.top", f"{top} is more than num_samples ({num_samples}): there are not that many configurations")
    return {"confirm_top": top if seeds else 0, "confirm_seeds": seeds if top else 0, "confirm_keep": keep if top and seeds else 0}


def fuse_setting(check: _Checker, spec) -> str:
    """`fuse: auto | on | off` (YAML reads a bare on/off as true/false: both spellings are taken)."""
    value = {True: "on", False: "off"}.get(spec, spec) if isinstance(spec, bool) else spec
    if value not in FUSE:
        raise check.fail("fuse", f"must be one of {', '.join(FUSE)}, got {spec!r}")
    return value


def floor_setting(check: _Checker, spec) -> bool:
    """`floor: true | false` (`--no-floor`): whether the sweep scores the non-learned floor beside its trials."""
    if not isinstance(spec, bool):
        raise check.fail("floor", f"must be true or false, got {spec!r}")
    return spec


def trackers(check: _Checker, spec) -> tuple[str, ...]:
    """`log_to: mlflow` or a list of mlflow, wandb, tensorboard."""
    names = [spec] if isinstance(spec, str) else spec or []
    if not isinstance(names, list) or any(n not in TRACKERS for n in names):
        raise check.fail("log_to", f"must be one or a list of {', '.join(TRACKERS)}, got {spec!r}")
    return tuple(dict.fromkeys(names))


SHIPPED_DIR = Path(str(resources.files("hamtune") / "search_spaces"))  # package data: a wheel installs them too
SHIPPED = tuple(sorted(p.stem for p in SHIPPED_DIR.glob("*.yaml")))


def shipped(path: Path) -> Path:
    """A shipped space by its bare name (`quick`, `quick.yaml`) when no such file is here: works from an installed wheel."""
    if path.exists() or path.parent != Path("."):
        return path
    candidate = SHIPPED_DIR / (path.name if path.suffix else f"{path.name}.yaml")
    return candidate if candidate.is_file() else path


def load_space(path: Path, overrides: dict | None = None) -> SearchSpace:
    """Read and validate a search-space file; any problem is an error naming the file and key.
    `overrides` (from --set, --data...) replace top-level keys or fix TrainConfig fields."""
    path = shipped(Path(path))
    try:
        raw = load_yaml(read_text(path, limit=1 << 20))
    except FileNotFoundError:
        raise HamtuneError(f"{path}: no such search-space file; shipped spaces: {', '.join(SHIPPED)}") from None
    except IsADirectoryError:
        raise HamtuneError(f"{path}: a folder, not a search-space file") from None
    except DuplicateKey as exc:
        raise HamtuneError(f"{path}: {exc}") from None
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise HamtuneError(f"{path}: not valid YAML ({first_line(exc)})") from None
    if raw is None:
        raise HamtuneError(f"{path}: the file is empty; a search space names at least its params (see search_spaces/quick.yaml)")
    return parse_space(raw, path, overrides)


def sampler_spec(space: SearchSpace) -> SamplerSpec:
    """The sampler the space asks for, as plain data (built by the searcher), seeded for reproducible suggestions."""
    options = {k: v for k, v in space.sampler.items() if k != "name"}
    seed = int(options.pop("seed", space.fixed.get("seed", 0)))
    name = space.sampler["name"]
    return SamplerSpec(name, seed, options, space.grid() if name == "grid" else {})
