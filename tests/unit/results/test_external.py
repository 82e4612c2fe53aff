"""Internal vs external: the same model on the split's own test images and on an external test set is paired by
what it trained (configuration, seed, data), shown side by side with the drop, and the summary names the test set
the headline rests on."""

from __future__ import annotations

import pandas as pd
import pytest

from hamtune.report.external import section
from hamtune.results.external import claim_basis, identities, side_by_side
from hamtune.results.rank import Metric, rank
from hamtune.results.store import trial_row

DATA = {"name": "ham", "fingerprint": "d" * 16, "path": "/data/ham"}
EXTERNAL = {"name": "isic-test", "fingerprint": "e" * 16, "path": "/data/isic"}


def _row(
    trial_id: str,
    test: dict | None,
    val: float,
    auroc: float,
    *,
    lr: float = 1e-3,
    seed: int = 0,
    sweep: str = "s",
    extra: dict | None = None,
    model_params: dict | None = None,
) -> dict:
    params = {
        "kind": "ae",
        "arch": "cnn",
        "lr": lr,
        "seed": seed,
        "protocol": "cancer",
        "split": "random",
        "split_seed": 0,
        "val_fraction": 0.15,
        "test_fraction": 0.0 if test else 0.15,
        "score": "mse",
        **(model_params or {}),
    }
    history = [{"epoch": 1, "val_auroc": val, "test_auroc": auroc, "epoch_time_s": 1.0}]
    return trial_row(
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
        test_manifest=test,
        extra=extra,
    )


@pytest.fixture
def ranking():
    rows = [
        _row("a-int", None, 0.90, 0.88),
        _row("b-int", None, 0.80, 0.84, lr=5e-3),
        _row("c-int", None, 0.70, 0.70, lr=1e-2),  # never tested externally
        _row("a-ext", EXTERNAL, 0.91, 0.79, sweep="e"),
        _row("b-ext", EXTERNAL, 0.82, 0.80, lr=5e-3, sweep="e"),
        _row("a-seed1-ext", EXTERNAL, 0.60, 0.60, seed=1, sweep="e"),  # another seed: another model
    ]
    return rank(pd.DataFrame(rows), Metric("test_auroc", True), Metric("val_auroc", True))


def test_the_same_model_on_both_test_sets_is_paired_with_its_drop(ranking):
    pairs = side_by_side(ranking)
    assert sorted(zip(pairs["trial_id_internal"], pairs["trial_id_external"])) == [("a-int", "a-ext"), ("b-int", "b-ext")]
    a = pairs.set_index("trial_id_internal").loc["a-int"]
    assert a["drop"] == pytest.approx(0.79 - 0.88)
    assert a["test_key_external"].startswith("isic-test") and "test-split" in a["test_key_internal"]


def test_the_summary_names_the_test_set_the_headline_rests_on(ranking):
    pairs = side_by_side(ranking)
    first_key = next(iter(ranking.boards))
    text = claim_basis(ranking, pairs)
    assert text.startswith(f"The headline above rests on {first_key}")
    assert ("external" in text.split(":")[1]) == first_key.startswith("isic-test")
    assert "0.880" in text and "0.790" in text and "-0.090" in text
    html = section(pairs, ranking, lambda frame: frame.to_html())
    assert "internal test_auroc" in html and "external test_auroc" in html and "-0.090" in html


def test_without_an_external_test_set_there_is_nothing_to_show(ranking):
    internal = ranking.ranked
    only = rank(internal[internal["test_data_fingerprint"].isna()], ranking.metric, ranking.select)
    assert side_by_side(only).empty and claim_basis(only, side_by_side(only)) == ""


def test_an_ensemble_is_the_same_model_when_its_members_are():
    members = [_row(f"m{s}-{side}", test, 0.8, 0.8, seed=s, sweep=side) for side, test in (("i", None), ("x", EXTERNAL)) for s in (0, 1)]
    ensembles = [
        _row(
            f"ens-{side}",
            test,
            0.85,
            0.85,
            sweep=side,
            extra={"model": "seed-ensemble-2", "members": f"m0-{side},m1-{side}"},
            model_params={"kind": "ensemble"},
        )
        for side, test in (("i", None), ("x", EXTERNAL))
    ]
    frame = pd.DataFrame(members + ensembles)
    found = identities(frame)
    assert found.iloc[4] == found.iloc[5] and found.iloc[0] == found.iloc[2] and found.iloc[0] != found.iloc[1]


def test_a_floor_is_the_same_method_whatever_setting_validation_chose_on_each_side():
    rows = [
        _row(
            f"blur-{side}",
            test,
            0.7,
            auroc,
            sweep=side,
            model_params={"kind": None, "arch": None, "lr": None},
            extra={"model": "blur", "baseline": "blur", "baseline_setting": setting},
        )
        for side, test, auroc, setting in (("i", None, 0.75, "sigma=2"), ("x", EXTERNAL, 0.70, "sigma=4"))
    ]
    pairs = side_by_side(rank(pd.DataFrame(rows), Metric("test_auroc", True), Metric("val_auroc", True)))
    assert list(pairs["role_internal"]) == ["classical: blur"] and pairs["drop"].iloc[0] == pytest.approx(-0.05)
