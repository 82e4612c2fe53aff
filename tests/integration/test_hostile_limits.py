"""Hostile input, third round (issue 32, items 4 and 6): programs and services run with limits, API arguments are
typed, Ctrl-C ends a command with nothing half-written, and counts that would run for days are refused."""

from __future__ import annotations

import json
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import onnx
import pytest
from conftest import TINY_SPACE, assert_one_line_error, run_cli
from onnx import TensorProto, helper
from PIL import Image

import hamtune
from hamtune import files
from hamtune.cli import main
from hamtune.errors import HamtuneError, UsageError
from hamtune.export import integrity
from hamtune.export.bundle import META, NAMES
from hamtune.results.rank import top_trials


@pytest.fixture(scope="module")
def seeded(prepared, tmp_path_factory) -> Path:
    """`train --seeds 2`: two seeds of one configuration and their seed ensemble's row, as a confirmed sweep has."""
    root = tmp_path_factory.mktemp("seeded")
    code = main(
        [
            "train",
            "--data",
            str(prepared.path),
            "--set",
            "epochs=1",
            "--set",
            "image_size=28",
            "--set",
            "arch=mlp",
            "--set",
            "mlp_width=32",
            "--seeds",
            "2",
            "--name",
            "x",
            "--results",
            str(root),
        ]
    )
    assert code == 0
    return root / "x"


@pytest.fixture(scope="module")
def onnx_bundle(seeded, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("onnx") / "b"
    assert main(["export", str(seeded), "--trial", seed_trial(seeded), "--out", str(out), "--format", "onnx"]) == 0
    return out


def seed_trial(seeded: Path) -> str:
    trials = hamtune.load_results(seeded)[0]
    return str(trials.loc[trials["kind"] == "ae", "trial_id"].iloc[0])


def endless_loop(inputs: list[tuple[str, int, list]], outputs: list[str]) -> onnx.ModelProto:
    """A model with hamtune's inputs and outputs whose outputs wait on a Loop with no trip count and a condition that
    stays true: it never ends."""
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), helper.make_node("Identity", ["v_in"], ["v_out"])],
        "body",
        [
            helper.make_tensor_value_info("i", TensorProto.INT64, []),
            helper.make_tensor_value_info("cond_in", TensorProto.BOOL, []),
            helper.make_tensor_value_info("v_in", TensorProto.FLOAT, []),
        ],
        [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), helper.make_tensor_value_info("v_out", TensorProto.FLOAT, [])],
    )
    name, elem, shape = inputs[0]
    nodes = [
        helper.make_node("Constant", [], ["yes"], value=helper.make_tensor("t", TensorProto.BOOL, [], [True])),
        helper.make_node("Constant", [], ["zero"], value=helper.make_tensor("z", TensorProto.FLOAT, [], [0.0])),
        helper.make_node("Loop", ["", "yes", "zero"], ["v"], body=body),
    ]
    nodes += [helper.make_node("Add", [name, "v"], [out]) for out in outputs]
    graph = helper.make_graph(
        nodes,
        "endless",
        [helper.make_tensor_value_info(name, elem, ["n", *shape[1:]])],
        [helper.make_tensor_value_info(out, elem, None) for out in outputs],
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def test_a_model_onnx_with_an_endless_loop_is_refused_in_one_line_before_it_runs(capsys, onnx_bundle, tmp_path):
    bundle = shutil.copytree(onnx_bundle, tmp_path / "b")
    size = json.loads((bundle / META).read_text())["preprocess"]["size"]
    onnx.save(endless_loop([("x", TensorProto.FLOAT, [None, 3, size, size])], ["recon", "mu", "logvar"]), bundle / "model.onnx")
    info = json.loads((bundle / META).read_text())
    info[integrity.DIGESTS] = integrity.digests(bundle, NAMES, META)
    (bundle / META).write_text(json.dumps(info))
    image = tmp_path / "a.png"
    Image.fromarray(np.full((40, 40, 3), 120, dtype=np.uint8)).save(image)
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "score", bundle, image, "--format", "onnx", "--out", tmp_path / "s.csv")
    assert_one_line_error(code, err, "model.onnx: refused", "Loop")
    assert time.perf_counter() - started < 60 and not (tmp_path / "s.csv").exists()


def test_an_onnx_run_past_its_time_limit_is_stopped_by_onnxruntimes_terminate_flag():
    import onnxruntime as ort

    from hamtune.export.portable import run_limited

    model = endless_loop([("x", TensorProto.FLOAT, [None, 1])], ["y"])
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    started = time.perf_counter()
    with pytest.raises(HamtuneError, match="still running after 1 s"):
        run_limited(session, ["y"], {"x": np.zeros((1, 1), np.float32)}, Path("endless.onnx"), limit=1.0)
    assert time.perf_counter() - started < 30


def test_the_onnx_contract_states_how_16_bit_images_are_rescaled(onnx_bundle):
    meta = {p.key: p.value for p in onnx.load(str(onnx_bundle / "score.onnx")).metadata_props}
    assert "I;16" in meta["resize"] and "65535" in meta["resize"]


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_an_mlflow_server_that_refuses_connections_fails_the_sweep_up_front_in_one_line(capsys, prepared, tmp_path, monkeypatch):
    import yaml

    uri = f"http://127.0.0.1:{closed_port()}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    space = tmp_path / "s.yaml"
    space.write_text(yaml.safe_dump({**TINY_SPACE, "data": str(prepared.path), "num_samples": 1}, sort_keys=False))
    started = time.perf_counter()
    code, _, err = run_cli(capsys, "sweep", space, "--results", tmp_path / "r", "--log-to", "mlflow")
    assert_one_line_error(code, err, uri, "no answer")
    assert time.perf_counter() - started < 60 and not (tmp_path / "r" / "tiny" / "trials.parquet").exists()


@pytest.mark.parametrize(
    "argv, needle",
    [
        (["reproduce", "{seeded}", "--gpus-per-trial", "-1"], "--gpus-per-trial must be 0 or more"),
        (["reproduce", "{seeded}", "--seeds", "1000000"], "--seeds between 0 and 1000"),
        (["train", "--data", "{data}", "--seeds", "1000000"], "--seeds must be a whole number between 1 and 1000"),
        (["train", "--data", "{data}", "--set", "image_size=7"], "image_size"),
        (["train", "--data", "{data}", "--name", "n" * 256], "at most 200"),
        (["ensemble", "{seeded}", "--name", "n" * 256], "at most 200"),
    ],
)
def test_counts_and_names_that_would_hang_run_for_days_or_break_later_are_usage_errors(capsys, seeded, prepared, tmp_path, argv, needle):
    started = time.perf_counter()
    argv = [a.format(seeded=seeded, data=prepared.path) for a in argv]
    code, _, err = run_cli(capsys, *argv, *([] if argv[0] != "train" else ["--results", tmp_path / "r"]))
    assert_one_line_error(code, err, needle, usage=True)
    assert time.perf_counter() - started < 60
    assert not (tmp_path / "r").exists() or not any((tmp_path / "r").rglob("trials.parquet"))


def test_image_sizes_train_accepts_are_those_score_accepts():
    from hamtune.data import MIN_IMAGE_SIZE
    from hamtune.train.config import build_config

    with pytest.raises(UsageError, match="image_size"):
        build_config({"image_size": MIN_IMAGE_SIZE - 1})
    assert build_config({"image_size": MIN_IMAGE_SIZE}).image_size == MIN_IMAGE_SIZE


def test_ensemble_and_reproduce_on_seeds_of_one_configuration_never_take_the_seed_ensemble_row(capsys, seeded, tmp_path, caplog):
    board, _ = top_trials(seeded, 3, deep=True, configurations=True)  # what reproduce retrains
    assert list(board["kind"]) == ["ae"]  # the seeds are one configuration (one config_id), never their seed ensemble
    seeds, _ = top_trials(seeded, 3, deep=True)  # what ensemble takes: each seed, never the seed ensemble row
    assert list(seeds["kind"]) == ["ae", "ae"] and seeds["config_id"].nunique() == 1
    assert board["trial_id"].iloc[0] == seeds["trial_id"].iloc[0]
    code, out, err = run_cli(capsys, "ensemble", seeded, "--top", "3", "--results", tmp_path / "r")
    assert code == 0, err
    assert "ensemble of 2 trial(s)" in out
    assert "the ensemble has 2 members, not the 3 asked" in caplog.text


@pytest.mark.parametrize(
    "api_call, argument",
    [
        (lambda d: hamtune.make_report([d], output_format="pdf"), "output_format"),
        (lambda d: hamtune.make_report(str(d)), "results"),
        (lambda d: hamtune.make_report([d], top="3"), "top"),
        (lambda d: hamtune.make_report([d], no_html="no"), "no_html"),
        (lambda d: hamtune.rank(5), "results"),
        (lambda d: hamtune.rank(d, metric=5), "metric"),
        (lambda d: hamtune.rank(d, scores=[1]), "scores"),
        (lambda d: hamtune.export_model(d, 5), "out"),
        (lambda d: hamtune.export_model(d, "o", rank="1"), "rank"),
        (lambda d: hamtune.export_model(d, "o", force="yes"), "force"),
        (lambda d: hamtune.export_model(d, "o", formats="onnx"), "formats"),
        (lambda d: hamtune.build_ensemble(d, top="3"), "top"),
        (lambda d: hamtune.reproduce(d, seeds="2"), "seeds"),
        (lambda d: hamtune.reproduce(d, gpus_per_trial=-1.0), "--gpus-per-trial"),
        (lambda d: hamtune.train_model(data=5), "data"),
        (lambda d: hamtune.train_model(seeds=[2]), "seeds"),
        (lambda d: hamtune.run_sweep(5), "space"),
        (lambda d: hamtune.run_sweep("x.yaml", log_to="mlflow"), "log_to"),
        (lambda d: hamtune.run_sweep("x.yaml", overrides=[1]), "overrides"),
        (lambda d: hamtune.run_baselines("synthetic", settings=[1]), "settings"),
        (lambda d: hamtune.prepare_data(d, size="64"), "size"),
        (lambda d: hamtune.prepare_data(d, force="yes"), "force"),
        (lambda d: hamtune.synthesize_data(d, n="3"), "n"),
        (lambda d: hamtune.score("m", "i.png", device=5), "device"),
        (lambda d: hamtune.write_scores("m", "i.png", progress="y"), "progress"),
        (lambda d: hamtune.load_space(5), "path"),
        (lambda d: hamtune.configurations(d, rank_by=5), "rank_by"),
    ],
)
def test_a_wrong_typed_api_argument_is_one_usage_error_naming_it(seeded, tmp_path, monkeypatch, api_call, argument):
    monkeypatch.chdir(tmp_path)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(UsageError, match=f"^{argument} must be"):
        api_call(seeded)
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def tree(folder: Path) -> dict[str, bytes | None]:
    """Every path under `folder` (a bundle holds a `members/` folder) with its bytes; None for a folder."""
    return {str(p.relative_to(folder)): None if p.is_dir() else p.read_bytes() for p in folder.rglob("*")}


def test_ctrl_c_that_a_library_swallows_still_ends_export_force_with_130_and_the_old_bundle_whole(capsys, seeded, tmp_path, monkeypatch):
    import hamtune.export.bundle as bundle_module

    out = tmp_path / "b"
    assert main(["export", str(seeded), "--out", str(out)]) == 0
    before = tree(out)
    card = bundle_module.model_card

    def interrupted_card(*args, **kwargs):
        try:  # Ctrl-C arrives while a C extension runs Python code that drops the exception
            files.on_interrupt(2, None)
        except KeyboardInterrupt:
            pass
        return card(*args, **kwargs)

    monkeypatch.setattr(bundle_module, "model_card", interrupted_card)
    code, _, err = run_cli(capsys, "export", seeded, "--trial", seed_trial(seeded), "--out", out, "--force")
    assert code == 130 and err.strip() == "hamtune: interrupted", err
    assert tree(out) == before
    assert [p.name for p in tmp_path.iterdir()] == ["b"]  # no temporary or renamed-aside folder left


def test_a_folder_swap_finishes_before_a_ctrl_c_inside_it_is_raised(tmp_path):
    out = tmp_path / "b"
    out.mkdir()
    (out / "old").write_text("old")
    with pytest.raises(KeyboardInterrupt), files.atomic_folder(out) as tmp:
        (tmp / "new").write_text("new")
        files._interrupt["holding"] += 1  # as inside the swap: the handler only remembers
        try:
            files.on_interrupt(2, None)
        finally:
            files._interrupt["holding"] -= 1
    files._interrupt["asked"] = False
    assert [p.name for p in out.iterdir()] == ["old"]  # asked before the swap began: nothing was put in place
    assert [p.name for p in tmp_path.iterdir()] == ["b"]


@pytest.mark.parametrize(
    "name, content, needle",
    [
        ("sweep.json", "{not json", "sweep.json: not readable JSON"),
        ("sweep.json", json.dumps({"space": {"resources": "many"}}), "sweep.json: field 'space.resources' must be dict"),
        ("sweep.json", json.dumps({"command": ["rm"]}), "sweep.json: field 'command' must be str"),
        ("confirm.json", "[]", "confirm.json: must hold a JSON object"),
        ("confirm.json", json.dumps({"metric": "val_auroc", "top": "3", "seeds": 2, "trials": 6}), "confirm.json: field 'top' must be int"),
        ("confirm.json", json.dumps({"metric": "val_auroc"}), "confirm.json: field 'top' is missing"),
    ],
)
def test_a_malformed_sweep_or_confirm_record_is_one_line_naming_it_in_the_methods_card(capsys, seeded, tmp_path, name, content, needle):
    folder = shutil.copytree(seeded, tmp_path / "r")
    (folder / name).write_text(content)
    for form in ("methods", "latex"):
        code, _, err = run_cli(capsys, "report", folder, "--format", form)
        assert_one_line_error(code, err, needle)


def test_a_bad_confirm_json_stops_sweep_resume_before_any_training_not_at_its_end(prepared, ray_local, tmp_path):
    from conftest import tiny_space

    from hamtune.sweep.tune.runner import SweepOptions, run_sweep

    space = tiny_space(
        prepared,
        tmp_path / "one.yaml",
        name="one",
        num_samples=1,
        max_epochs=1,
        points_to_evaluate=[],
        params={"kind": {"choice": ["ae"]}, "arch": {"choice": ["mlp"]}, "lr": {"float": [1e-3, 5e-3]}},
    )
    directory = run_sweep(space, SweepOptions(results_root=tmp_path))
    (directory / "confirm.json").write_text('{"metric": "val_auroc", "top": 1, "seeds": 2, "trials": "two"}')
    before = (directory / "trials.parquet").read_bytes()
    with pytest.raises(HamtuneError, match="confirm.json: field 'trials' must be int"):
        run_sweep(space, SweepOptions(results_root=tmp_path, resume=True, num_samples=2))
    assert (directory / "trials.parquet").read_bytes() == before
