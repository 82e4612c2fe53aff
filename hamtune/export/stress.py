"""The stress test (`hamtune stress`): how the delivered model, the best deep trial and the non-learned floor hold when the test images
are shifted as another clinic's camera would shift them (hamtune.data.shifts), written to stress.parquet.

Every model scores the very test images its row was measured on: the split is rebuilt from the row's prepared
cache(s) and TrainConfig by the functions training uses (sweep_data, plan_splits). Deep models score through a
temporary export of their checkpoint (a seed ensemble as its ensemble bundle), exactly as `hamtune score` would;
the floor rows (PCA, blur, down/up-sampling) are fitted again on the training normals with the setting and score
their row records, as `hamtune baselines` fitted them. Per (model, shift, strength): test AUROC with its bootstrap
interval, and paired differences (the same resamples) to the same model unshifted and to the floor (the cheap
classical row best on validation) under the same shift. The shifts act on the prepared images, i.e. at the model's
input size.
"""

from __future__ import annotations

import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from hamtune.data.shifts import Shift
from hamtune.errors import HamtuneError
from hamtune.results.intervals import Interval, from_draws, resample_weights, shown, signed, weighted_auroc_auprc
from hamtune.results.layout import STRESS
from hamtune.results.roles import Role, having

if TYPE_CHECKING:
    from hamtune.train.config import TrainConfig

log = logging.getLogger(__name__)

UNSHIFTED = "none"
DELIVERED, BEST_DEEP, FLOOR = "delivered", "best deep trial", "floor"
FIX = "restore the prepared cache at that path (hamtune data prepare SOURCE --out PATH) and run stress again"
Score = Callable[[np.ndarray], np.ndarray]  # uint8 test images -> anomaly scores


@dataclass
class Subject:
    """One model under stress: its results row, its part in the test and its scorer."""

    row: pd.Series
    part: str  # DELIVERED, BEST_DEEP or FLOOR
    name: str
    score: Score


def _deep(row: pd.Series, part: str, metric: str, target) -> tuple[Subject, TrainConfig]:
    """A deep row (a trial or an ensemble) scored through a temporary export of its checkpoint; with its config."""
    from hamtune.export.bundle import EnsembleBundle, load_bundle, write_bundle

    with tempfile.TemporaryDirectory(prefix="hamtune-stress-") as folder:
        bundle = load_bundle(write_bundle(row, Path(folder) / "bundle", metric, 1))
        score = bundle.scorer(target)  # weights and score state are read into memory here
    config = bundle.members[0].config if isinstance(bundle, EnsembleBundle) else bundle.config
    name = str(row.get("model")) if isinstance(row.get("model"), str) else f"{row.get('kind')}/{row.get('arch')}"
    return Subject(row, part, f"{name} ({row['trial_id']})", score), config


class FloorMethod:
    """A classical reconstruction (PCA, blur, down/up-sampling) fitted on the training normals; its reconstruction
    terms of the last images it saw are kept, so a method's mse, ssim and mse+ssim rows reconstruct once."""

    def __init__(self, name: str, seed: int, data, plan) -> None:
        from hamtune.baselines.classical import parse_method, pixels
        from hamtune.baselines.run import split_images, terms_of

        method = parse_method(name, seed=seed)
        self.shape = tuple(data.images.shape[1:])
        self.reconstruct = method.candidates[0][1](pixels(data.images[plan.train]), self.shape)
        self.val = split_images(data, plan.val, plan.labels)
        self.val_terms = terms_of(self.val, self.reconstruct(self.val.x))
        self._last: tuple[np.ndarray, dict] | None = None

    def terms(self, images: np.ndarray) -> dict[str, np.ndarray]:
        from hamtune.baselines.classical import pixels
        from hamtune.baselines.run import Split, terms_of

        if self._last is None or self._last[0] is not images:
            n = len(images)
            split = Split(pixels(images), np.zeros(n), np.zeros(n, str), np.zeros(n, str), self.shape)
            self._last = (images, terms_of(split, self.reconstruct(split.x)))
        return self._last[1]

    def scorer(self, score: str) -> Score:
        """The row's score of the reconstruction, standardised on the validation normals as its run did."""
        from hamtune.train.evaluate import ScoreState, anomaly_score, fit_standardisation

        state = ScoreState()
        fit_standardisation(self.val_terms, self.val.labels, score, state)
        return lambda images: anomaly_score(self.terms(images), score, state)


def floor_method_name(row: pd.Series) -> str | None:
    """The method (with the setting validation chose) a classical row was fitted as; None for what is not refitted
    here (IsolationForest, k-NN: not a cheap floor)."""
    family, setting = row.get("baseline"), row.get("baseline_setting")
    if family == "pca" and pd.notna(row.get("latent_dim")):
        return f"pca-{int(row['latent_dim'])}"
    if family in ("blur", "resample") and isinstance(setting, str) and "=" in setting:
        return f"{family}-{setting.split('=', 1)[1]}"
    return None


def _same_split(row: pd.Series, config, reference: pd.Series) -> str | None:
    """Why a row was not measured on the delivered model's test images, or None when it was."""
    from hamtune.config_fields import SPLIT_KEYS
    from hamtune.results.chosen import typed_config

    for column in ("data_fingerprint", "test_data_fingerprint"):
        mine, theirs = row.get(column), reference.get(column)
        if (isinstance(mine, str) or isinstance(theirs, str)) and mine != theirs:
            return f"{column} differs"
    values = typed_config(row)
    differs = [k for k in SPLIT_KEYS if k in values and values[k] != getattr(config, k)]
    return f"{', '.join(differs)} differ" if differs else None


@dataclass
class Plan:
    """What the stress test scores, on which images."""

    subjects: list[Subject]
    floor: Subject | None
    images: np.ndarray  # the test split's uint8 images at the model's input size
    labels: np.ndarray
    test_key: str


def plan_stress(directory: Path, target) -> Plan:
    """The delivered model, the best deep trial and the cheap floor rows of a results folder, on its test split."""
    from hamtune.data.same_data import sweep_data
    from hamtune.results.chosen import chosen_of, typed_config
    from hamtune.results.rank import DEEP_KINDS, objective, rank
    from hamtune.results.store import load_results
    from hamtune.train.data import plan_splits

    trials = load_results(directory)[0]
    chosen = chosen_of(directory)
    if chosen is None:
        raise HamtuneError(f"{directory}: no ranked trial; nothing to stress")
    boards = rank(trials, objective(trials)).boards
    board = boards.get(chosen.test_key, next(iter(boards.values())))
    found = board[board["trial_id"].astype(str) == chosen.trial_id]
    if not len(found) or found.iloc[0].get("kind") not in (*DEEP_KINDS, "ensemble"):
        raise HamtuneError(
            f"{directory}: the chosen model {chosen.trial_id} is not a deep model (the folder holds no trained one); nothing to stress"
        )
    delivered_row = found.iloc[0]
    delivered, config = _deep(delivered_row, DELIVERED, chosen.metric, target)
    subjects = [delivered]
    searched = board[having(board["role"], Role.SEARCH) & board["kind"].isin(DEEP_KINDS)]  # one trial: the best value, not the best mean
    searched = searched.sort_values(chosen.metric, ascending=chosen.mode == "min", kind="stable")
    if len(searched) and str(searched.iloc[0]["trial_id"]) != chosen.trial_id:
        subjects.append(_deep(searched.iloc[0], BEST_DEEP, chosen.metric, target)[0])
    data, test_data = sweep_data(found, None, None, fix=FIX)
    plan = plan_splits(data, config, test_data)
    methods: dict[str, FloorMethod] = {}
    floors = []
    for _, row in board[having(board["role"], Role.FLOOR)].iterrows():
        name, why = floor_method_name(row), _same_split(row, config, delivered_row)
        if name is None or why is not None:
            log.info("stress: %s left out (%s)", row.get("model"), why or "not a cheap floor: refitted only PCA, blur, resample")
            continue
        seed = typed_config(row).get("seed") or 0
        if name not in methods:
            methods[name] = FloorMethod(name, int(seed), data, plan)
        floors.append(Subject(row, FLOOR, str(row["model"]), methods[name].scorer(str(row.get("score") or "mse"))))
    source = test_data or data
    return Plan(
        subjects + floors,
        floors[0] if floors else None,
        source.images[plan.test],
        plan.test_labels[plan.test].astype(np.int8),
        str(chosen.test_key),
    )


def _interval(prefix: str, interval: Interval | None) -> dict[str, float]:
    values = (interval.value, interval.low, interval.high) if interval is not None else (math.nan,) * 3
    return dict(zip((prefix, f"{prefix}_low", f"{prefix}_high"), values))


def run_stress(plan: Plan, shifts: list[Shift], strengths: list[float], seed: int = 0) -> pd.DataFrame:
    """One row per (model, shift, strength), the unshifted images first (shift `none`, strength 0). Every model is
    measured on the same bootstrap resamples (intervals.resample_weights: those `bootstrap` and `paired_difference`
    draw), once per condition, so its intervals and paired differences are theirs at a fifth of the cost."""
    conditions: list[tuple[Shift | None, float]] = [(None, 0.0), *((s, v) for s in shifts for v in strengths)]
    labels, rows = plan.labels, []
    weights, ones = resample_weights(labels), np.ones((1, len(labels)))
    unshifted: dict[int, tuple[float, np.ndarray]] = {}
    size = "x".join(str(n) for n in plan.images.shape[1:])
    for shift, strength in conditions:
        images = plan.images if shift is None else shift(plan.images, strength, seed)
        measured = {}
        for subject in plan.subjects:
            scores = np.asarray(subject.score(images), dtype=float)
            (auroc,), (auprc,) = weighted_auroc_auprc(labels, scores, ones)
            measured[id(subject)] = (auroc, auprc, weighted_auroc_auprc(labels, scores, weights)[0])
        if shift is None:
            unshifted = {key: (auroc, drawn) for key, (auroc, _, drawn) in measured.items()}
        for subject in plan.subjects:
            auroc, auprc, drawn = measured[id(subject)]
            change = versus = None
            if shift is not None:
                base, base_drawn = unshifted[id(subject)]
                change = from_draws(auroc - base, drawn - base_drawn)
            if plan.floor is not None and subject.part != FLOOR:
                floor, _, floor_drawn = measured[id(plan.floor)]
                versus = from_draws(auroc - floor, drawn - floor_drawn)
            rows.append(
                {
                    "sweep": str(subject.row["sweep"]),
                    "trial_id": str(subject.row["trial_id"]),
                    "model": subject.name,
                    "part": subject.part,
                    "floor": plan.floor.name if plan.floor is not None else None,
                    "shift": shift.name if shift else UNSHIFTED,
                    "strength": float(strength),
                    "setting": shift.setting(strength) if shift else "the test images as prepared",
                    "images": len(labels),
                    "anomalous": int(labels.sum()),
                    "input": size,
                    "shift_seed": seed,
                    "test_key": plan.test_key,
                    **_interval("auroc", from_draws(auroc, drawn)),
                    "auprc": float(auprc),
                    **_interval("change", change),
                    **_interval("vs_floor", versus),
                }
            )
    return pd.DataFrame(rows)


def check_recorded(frame: pd.DataFrame, plan: Plan) -> None:
    """The unshifted AUROC of every model must be its row's test AUROC: else the split rebuilt is not its own."""
    base = frame[frame["shift"] == UNSHIFTED]
    for subject, (_, row) in zip(plan.subjects, base.iterrows()):
        recorded = pd.to_numeric(pd.Series([subject.row.get("test_auroc")]), errors="coerce").iloc[0]
        if math.isfinite(recorded) and abs(recorded - row["auroc"]) > 1e-3:
            log.warning(
                "stress: %s scores test AUROC %.4f unshifted, but its row records %.4f (another device, or data changed since)",
                subject.name,
                row["auroc"],
                recorded,
            )


def headline_rows(frame: pd.DataFrame) -> pd.DataFrame:
    """The deep models and, of the floor rows, the one they are compared with (the rest stay in stress.parquet)."""
    return frame[(frame["part"] != FLOOR) | (frame["model"] == frame["floor"])]


def format_stress(frame: pd.DataFrame) -> str:
    """The terminal table: per model, each shift's AUROC [95%], its change from unshifted and its lead over the floor."""
    lines = []
    floor = frame["floor"].dropna()
    if len(floor):
        others = frame.loc[frame["part"] == FLOOR, "model"].nunique() - 1
        lines.append(
            f"floor: {floor.iloc[0]} (the cheap classical row best on validation), under the same shift"
            + (f"; {others} other floor row(s) in {STRESS}" if others else "")
        )
    width = max(len(f"{s} {v:g}") for s, v in zip(frame["shift"], frame["strength"]))
    for (part, model), rows in headline_rows(frame).groupby(["part", "model"], sort=False):
        lines.append(f"{part}: {model}")
        lines.append(f"  {'shift':<{width}}  {'AUROC [95%]':<24}  {'change':<26}  vs floor")
        for _, row in rows.iterrows():
            label = f"{row['shift']} {row['strength']:g}" if row["shift"] != UNSHIFTED else UNSHIFTED
            auroc = shown(row["auroc"], row["auroc_low"], row["auroc_high"])
            change = signed(Interval(row["change"], row["change_low"], row["change_high"])) if math.isfinite(row["change"]) else ""
            versus = signed(Interval(row["vs_floor"], row["vs_floor_low"], row["vs_floor_high"])) if math.isfinite(row["vs_floor"]) else ""
            lines.append(f"  {label:<{width}}  {auroc:<24}  {change:<26}  {versus}")
    verdict = lead_verdict(frame)
    return "\n".join([*lines, verdict] if verdict else lines)


def lead_verdict(frame: pd.DataFrame) -> str:
    """Where the delivered model's lead over the floor holds (paired interval above 0), is lost in the noise, or turns
    into a loss: one sentence, or '' without a floor."""
    rows = frame[(frame["part"] == DELIVERED) & frame["vs_floor"].notna()]
    if not len(rows):
        return ""
    groups: dict[str, list[str]] = {"holds": [], "unclear": [], "beaten": []}
    for _, row in rows.iterrows():
        label = UNSHIFTED if row["shift"] == UNSHIFTED else f"{row['shift']} {row['strength']:g}"
        which = "holds" if row["vs_floor_low"] > 0 else "beaten" if row["vs_floor_high"] < 0 else "unclear"
        groups[which].append(label)
    parts = [
        f"{words} under {', '.join(groups[key])}"
        for key, words in (("holds", "holds"), ("unclear", "is not distinguishable from 0"), ("beaten", "turns into a loss"))
        if groups[key]
    ]
    return (
        f"The delivered model's lead over the floor {rows['floor'].iloc[0]} (paired 95% interval of the AUROC "
        f"difference) " + "; ".join(parts) + "."
    )
