"""Search-space files are validated before Ray starts: every mistake names the file and the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TINY_SPACE

from hamtune.cli import main
from hamtune.errors import HamtuneError
from hamtune.sweep.space import load_space, parse_space


def test_shipped_spaces_are_valid():
    names = {p.stem for p in (ROOT / "search_spaces").glob("*.yaml")}
    assert {"quick", "seed-baselines", "ham10000", "pareto"} <= names
    for path in (ROOT / "search_spaces").glob("*.yaml"):
        load_space(path)
    assert load_space(ROOT / "search_spaces" / "pareto.yaml").multi_objective


@pytest.mark.parametrize(
    "change, message",
    [
        ({"params": {"latent_dim": {"int": [64, 8]}}}, "params.latent_dim.int: low must be below high"),
        ({"params": {"kind": {"choice": ["ae", "gan"]}}}, "params.kind.choice: kind must be one of ae, vae"),
        ({"params": {"widht": {"choice": [1]}}}, "params.widht: not a TrainConfig field"),
        ({"params": {"beta": {"float": [0.1, 1], "when": {"kind": "vae"}}}}, "params.beta.when.kind: a condition may only refer"),
        ({"objective": {"metric": "test_auroc"}}, "objective.metric: 'test_auroc' is not one of"),
        ({"sampler": {"name": "bayes"}}, "sampler.name: expected one of"),
        ({"scheduler": {"name": "asha", "grace": 1}}, "scheduler.grace: unknown option"),
        ({"num_samples": 0}, "num_samples: must be at least 1"),
        ({"resources": {"cpus": 1, "gpu": 1}}, "resources: only cpus and gpus"),
        (
            {"objective": [{"metric": "val_ssim"}, {"metric": "val_auroc"}], "scheduler": {"name": "asha"}},
            "early stopping (asha) needs a single objective",
        ),
        ({"lerning_rate": 1}, "lerning_rate: unknown key"),
        ({"confirm": {"top": 2, "seed": 3}}, "confirm: only top, seeds and keep can be set"),
        ({"confirm": {"top": 2, "seeds": 2, "keep": 4}}, "confirm.keep: 4: an ensemble keeps 2 to 3 seeds"),
        ({"confirm": {"top": 2, "seeds": 2, "keep": 1}}, "confirm.keep: 1: an ensemble keeps 2 to 3 seeds"),
        (
            {"params": {"kind": {"choice": ["ae", "vae"]}, "recon_loss": {"choice": ["mse", "ssim_l1"]}}},
            "params: recon_loss=ssim_l1 needs kind=ae",
        ),
        ({"confirm": {"top": 5, "seeds": 2}}, "confirm.top: 5 is more than num_samples (4)"),
        ({"confirm": {"top": 1, "seeds": -1}}, "confirm.seeds: must be at least 0"),
        ({"fuse": "always"}, "fuse: must be one of auto, on, off, got 'always'"),
        (
            {"objective": [{"metric": "val_ssim"}, {"metric": "val_auroc"}], "confirm": {"top": 1, "seeds": 2}},
            "confirm: the confirm stage ranks configurations by one objective",
        ),
        ({"fixed": {"recon_loss": "bce", "input_range": "pm1"}}, "fixed: recon_loss=bce needs input_range=01"),
        (
            {"fixed": {"input_range": "pm1"}, "params": {"recon_loss": {"choice": ["mse", "bce"]}}},
            "params: recon_loss=bce needs input_range=01 (BCE compares values in [0, 1]); a trial can sample recon_loss=bce",
        ),
        (
            {"params": {"kind": {"choice": ["ae", "vae"]}, "score": {"choice": ["mse", "elbo"]}}},
            "params: score=elbo needs kind=vae (an autoencoder has no ELBO); a trial can sample score=elbo",
        ),
        (
            {"params": {"val_fraction": {"float": [0.1, 0.45]}, "test_fraction": {"float": [0.1, 0.45]}}},
            "params: val_fraction + test_fraction must leave some training data; a trial can sample val_fraction=0.45",
        ),
    ],
)
def test_invalid_space_fails_before_ray_naming_the_key(tmp_path, capsys, change, message):
    raw = {**TINY_SPACE, **change}
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False))
    with pytest.raises(HamtuneError) as error:
        parse_space(yaml.safe_load(path.read_text()), path)
    assert str(path) in str(error.value) and message in str(error.value)
    assert main(["sweep", str(path), "--results", str(tmp_path)]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "tiny").exists()


def test_a_rule_between_fields_kept_by_a_condition_is_accepted(tmp_path):
    """score=elbo only where kind=vae: every trial the space can sample is valid, so the file is."""
    params = {"kind": {"choice": ["ae", "vae"]}, "score": {"choice": ["mse", "elbo"], "when": {"kind": "vae"}}}
    space = parse_space({**TINY_SPACE, "params": params, "points_to_evaluate": []}, tmp_path / "ok.yaml")
    assert [p.name for p in space.params] == ["kind", "score"]


def test_fuse_reads_yaml_on_and_off_and_defaults_to_auto(tmp_path):
    path = tmp_path / "space.yaml"
    spaces = {
        text: parse_space(yaml.safe_load(yaml.safe_dump(TINY_SPACE, sort_keys=False) + text), path).fuse
        for text in ("", "fuse: off\n", "fuse: on\n")
    }
    assert spaces == {"": "auto", "fuse: off\n": "off", "fuse: on\n": "on"}


def test_shipped_spaces_are_package_data_found_by_bare_name_anywhere(tmp_path, monkeypatch):
    """A wheel carries hamtune/search_spaces/*.yaml (pyproject's package-data), so `hamtune demo` and
    `hamtune sweep quick` work in a fresh venv without this repository."""
    import hamtune

    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    package = Path(hamtune.__file__).parent / "search_spaces"
    data = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["hamtune"]
    assert data == ["search_spaces/*.yaml"] and {p.stem for p in package.glob("*.yaml")} >= {"quick", "pareto", "ham10000-real"}
    assert (ROOT / "search_spaces").resolve() == package.resolve()
    monkeypatch.chdir(tmp_path)
    assert load_space(Path("quick")).path == package / "quick.yaml" and load_space(Path("pareto.yaml")).multi_objective
    with pytest.raises(HamtuneError, match="nope: no such search-space file; shipped spaces: .*quick"):
        load_space(Path("nope"))
