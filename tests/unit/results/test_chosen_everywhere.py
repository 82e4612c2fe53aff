"""One chosen model, read everywhere: results folders written with the store's own writer (no training), where the
confirmed configuration's seed ensemble is the choice on validation and a test-based choice would differ. The
leaderboard's rank 1, the report's summary and side-by-side table, the csv/json leaderboards, Results.best and the
export default all name the record in chosen.json; doctoring the test metrics changes none of them."""

from __future__ import annotations

import io
import json

import numpy as np
import pandas as pd
import pytest

import hamtune
from hamtune.cli import main as cli_main
from hamtune.report.tables import MACHINE_COLUMNS
from hamtune.results.chosen import read_chosen, record_choice
from hamtune.results.layout import CHOSEN, SCORES, TRIALS
from hamtune.results.store import ResultsWriter, read_parquet, trial_row, write_parquet

DATA = {"name": "synthetic", "fingerprint": "f00d", "path": "/nowhere"}
PARAMS = {
    "kind": "ae",
    "arch": "cnn",
    "protocol": "cancer",
    "split": "lesion",
    "split_seed": 0,
    "val_fraction": 0.2,
    "test_fraction": 0.2,
    "image_size": 28,
    "batch_size": 32,
}
ENSEMBLE = "seed-ensemble-2-beef"
TEST_BEST = "s4"  # lowest validation, highest test: what choosing on test labels would take


def _scores(auroc: float, seed: int) -> pd.DataFrame:
    """40 test images whose scores separate the labels about as well as `auroc` says."""
    rng = np.random.default_rng(seed)
    labels = np.r_[np.zeros(30, int), np.ones(10, int)]
    score = rng.normal(size=40) + labels * 2.0 * (auroc - 0.5) * 2
    return pd.DataFrame({"image_id": [f"i{i}" for i in range(40)], "dx": np.where(labels, "mel", "nv"), "label": labels, "score": score})


def _add(
    writer: ResultsWriter,
    sweep: str,
    trial_id: str,
    val: float,
    test: float,
    *,
    latent_dim: int | None = 16,
    extra: dict | None = None,
    kind: str = "ae",
    seed: int = 0,
) -> None:
    params = {**PARAMS, "kind": kind, "latent_dim": latent_dim, "lr": 1e-3, "seed": seed}
    history = [
        {
            "epoch": 1,
            "val_auroc": val,
            "val_loss": 1 - val,
            "test_auroc": test,
            "test_auprc": test / 2,
            "test_f1": test / 3,
            "epoch_time_s": 0.1,
        }
    ]
    row = trial_row(
        sweep=sweep,
        trial_id=trial_id,
        status="completed",
        reason="",
        params=params,
        history=history,
        objective=("val_auroc", "max"),
        wall_time_s=1.0,
        device="cpu",
        data_manifest=DATA,
        checkpoint=f"checkpoints/{trial_id}",
        extra=extra,
    )
    writer.add(row, history, _scores(test, len(writer.trials)), None)


def sweep_alpha(directory) -> None:
    """12 search trials (more than a table's 10 rows), two configurations confirmed on a second seed, and the chosen
    configuration's seed ensemble. s1's search trial is the best single validation value (a lucky seed); s2 has the
    best MEAN over its seeds, so its ensemble is the choice."""
    writer = ResultsWriter(directory)
    search = {"s1": (0.93, 0.60), "s2": (0.90, 0.62), "s3": (0.70, 0.64), TEST_BEST: (0.55, 0.97)}
    search |= {f"s{i}": (0.50 + i / 100, 0.5) for i in range(5, 13)}
    for trial_id, (val, test) in search.items():
        _add(writer, "alpha", trial_id, val, test, latent_dim=8 + len(trial_id), extra={"stage": "search", "config_id": trial_id})
    _add(writer, "alpha", "s1-c1", 0.60, 0.61, latent_dim=10, seed=1, extra={"stage": "confirm", "config_id": "s1"})
    _add(writer, "alpha", "s2-c1", 0.99, 0.63, latent_dim=10, seed=1, extra={"stage": "confirm", "config_id": "s2"})
    _add(
        writer,
        "alpha",
        ENSEMBLE,
        0.95,
        0.63,
        latent_dim=None,
        kind="ensemble",
        extra={"model": "seed-ensemble-2", "members": "s2,s2-c1", "members_from": "alpha", "epochs_run": None},
    )


def sweep_beta(directory) -> None:
    writer = ResultsWriter(directory)
    _add(writer, "beta", "b1", 0.80, 0.55)
    _add(writer, "beta", "b2", 0.40, 0.99)  # the test-best of beta


def doctor_tests(directory) -> None:
    """Turn the test metrics around (the lowest validation gets the best test value) and drop the record."""
    trials = read_parquet(directory / TRIALS)
    order = trials["val_auroc"].rank(method="first").to_numpy()
    values = 0.5 + 0.49 * (len(trials) - order) / len(trials)
    write_parquet(trials.assign(test_auroc=values, test_auprc=values / 2, test_f1=values / 3), directory / TRIALS)
    (directory / CHOSEN).unlink(missing_ok=True)


@pytest.fixture()
def folders(tmp_path):
    alpha, beta = tmp_path / "alpha", tmp_path / "beta"
    sweep_alpha(alpha)
    sweep_beta(beta)
    return alpha, beta


def answers(alpha, beta, tmp_path, capsys) -> dict[str, str]:
    """Which trial each reader names as alpha's chosen model."""
    found = {"record": record_choice(alpha).trial_id}
    record_choice(beta)
    found["rank 1"] = str(hamtune.rank(alpha)["trial_id"].iloc[0])
    found["Results.best"] = hamtune.open_results(alpha).best.trial_id
    with pytest.raises(hamtune.HamtuneError, match=r"trial (\S+): its checkpoint") as error:
        hamtune.export_model(alpha, tmp_path / "model")  # no weights here: the error names the trial it took
    found["export default"] = str(error.value).split()[1].rstrip(":")
    html = hamtune.write_report(alpha, beta, html=tmp_path / "report.html").read_text(encoding="utf-8")
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    found["summary"] = summary.split("<b>alpha/")[1].split("</b>")[0]
    side = html.split('<section id="sweeps">')[1].split("</section>")[0]
    found["side by side"] = next(t for t in (ENSEMBLE, "s1", "s2", "s2-c1", TEST_BEST) if f">{t}</td>" in side)
    assert ">b1</td>" in side and ">b2</td>" not in side  # beta by validation too
    capsys.readouterr()
    assert cli_main(["report", str(alpha), "--format", "csv"]) == 0
    csv = pd.read_csv(io.StringIO(capsys.readouterr().out))
    found["csv chosen"] = str(csv.loc[csv["chosen"], "trial_id"].iloc[0])
    return found


def test_every_reader_names_the_recorded_choice_and_none_chooses_on_test(folders, tmp_path, capsys):
    alpha, beta = folders
    before = answers(alpha, beta, tmp_path, capsys)
    assert set(before.values()) == {ENSEMBLE}, before
    doctor_tests(alpha)
    doctor_tests(beta)
    after = answers(alpha, beta, tmp_path, capsys)
    assert after == before, after
    assert hamtune.rank(alpha, metric="test_auroc")["test_auroc"].idxmax() != 0  # the doctoring did move test's best


def test_the_record_and_results_best_carry_the_ensembles_members_and_typed_configuration(folders):
    alpha, _ = folders
    record_choice(alpha)
    chosen = read_chosen(alpha)
    assert chosen.members == ("s2", "s2-c1") and chosen.kind == "ensemble" and chosen.config_id == "s2"
    assert "best mean val_auroc over 2 seeds" in chosen.rule and chosen.best_on_validation is None
    for name in ("val_auroc", "test_auroc"):  # two seeds far apart: a plain t-interval would run past 1
        assert 0 <= chosen.seeds[f"{name}_ci_low"] <= chosen.seeds[f"{name}_mean"] <= chosen.seeds[f"{name}_ci_high"] <= 1
    assert all(0 <= low <= high <= 1 for low, high in chosen.intervals.values())
    best = hamtune.open_results(alpha).best
    assert best.trial_id == ENSEMBLE and best.members == ("s2", "s2-c1") and best.is_ensemble and best.rule == chosen.rule
    assert best.config["latent_dim"] == 10 and type(best.config["latent_dim"]) is int and best.config["kind"] == "ae"
    assert type(best.config["batch_size"]) is int and best.config["lr"] == pytest.approx(1e-3)
    trial = hamtune.open_results(alpha).trial("s3")
    assert list(trial.history["val_auroc"]) == [0.70] and trial.checkpoint is None  # no weights kept in this folder


def test_csv_and_json_carry_every_row_with_stable_columns_and_write_nothing(folders, capsys):
    alpha, beta = folders
    for folder in (alpha, beta):
        capsys.readouterr()
        assert cli_main(["report", str(folder), "--format", "csv"]) == 0
        out, err = capsys.readouterr()
        frame = pd.read_csv(io.StringIO(out))
        assert list(frame.columns) == list(MACHINE_COLUMNS) and len(frame) == len(read_parquet(folder / TRIALS))
        assert ((frame["test_auroc_low"] >= 0) & (frame["test_auroc_high"] <= 1)).all()
        assert not (folder / "report.html").exists() and "report:" not in out + err
    assert cli_main(["report", str(alpha), "--format", "json", "--top", "3"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 3 and list(rows[0]) == list(MACHINE_COLUMNS) and rows[0]["trial_id"] == ENSEMBLE and rows[0]["chosen"]
    assert not (alpha / "report.html").exists() and (alpha / SCORES).exists()


def test_a_classical_row_above_every_deep_model_on_validation_is_named_first(folders, tmp_path, capsys):
    alpha, _ = folders
    _add(ResultsWriter(alpha), "alpha", "blur", 0.999, 0.7, latent_dim=None, kind="blur", extra={"model": "blur-2"})
    chosen = record_choice(alpha)
    assert chosen.trial_id == ENSEMBLE and chosen.best_on_validation == {"trial_id": "blur", "role": "classical: blur-2", "value": 0.999}
    html = hamtune.write_report(alpha, html=tmp_path / "r.html").read_text(encoding="utf-8")
    summary = html.split('<section id="summary">')[1].split("</section>")[0]
    assert "The best model here is blur-2 (val_auroc 0.999); the best deep model is alpha/" + ENSEMBLE in summary
    assert "beaten on validation by 1 non-deep model(s): blur-2" in summary and "Best deep model of 16 ranked" in summary
    capsys.readouterr()
    assert cli_main(["report", str(alpha), "--no-html"]) == 0
    assert "The best model here is blur-2 (val_auroc 0.999); the best deep model is alpha/" + ENSEMBLE in capsys.readouterr().out


def test_a_record_naming_a_row_the_folder_no_longer_holds_is_not_believed(folders):
    from hamtune.results.chosen import chosen_of

    alpha, _ = folders
    record_choice(alpha)
    trials = read_parquet(alpha / TRIALS)
    write_parquet(trials[trials["trial_id"] != ENSEMBLE], alpha / TRIALS)  # an edited folder: the ensemble row is gone
    assert read_chosen(alpha).trial_id == ENSEMBLE and chosen_of(alpha).trial_id == "s2-c1"  # its best seed, by the same rule


def test_the_ground_floors_field_names_are_trainconfigs():
    import typing
    from dataclasses import fields

    from hamtune.config_fields import FIELDS, WHOLE
    from hamtune.train.config import TrainConfig

    hints = typing.get_type_hints(TrainConfig)
    assert FIELDS == tuple(f.name for f in fields(TrainConfig))
    assert WHOLE == {f.name for f in fields(TrainConfig) if "int" in str(hints[f.name]) or f.name == "channels"}
