"""docs/integrations.md's numpy + PIL + onnxruntime recipe, run verbatim on JPEGs, scores as `hamtune score` does, and the
ONNX files say how (metadata_props)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hamtune.cli import main
from hamtune.data.images import RESIZE_RULE
from hamtune.export.bundle import load_bundle

pytestmark = pytest.mark.slow
ort = pytest.importorskip("onnxruntime", reason='the optional extra: pip install "hamtune[onnx]"')
RECIPE_DOC = Path(__file__).resolve().parents[2] / "docs" / "integrations.md"
SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "data" / "ham10000_sample"


def recipe() -> str:
    blocks = re.findall(r"```python\n(.*?)```", RECIPE_DOC.read_text(), flags=re.S)
    found = [b for b in blocks if "score.onnx" in b and "onnxruntime" in b]
    assert len(found) == 1, "docs/integrations.md holds one ONNX recipe"
    return found[0]


@pytest.fixture(scope="module")
def bundle(prepared, tmp_path_factory) -> Path:
    """The hardest score to carry over: a VAE scored mse+ssim+latent (standardised), with test-time flips."""
    import hamtune

    root = tmp_path_factory.mktemp("recipe")
    folder = hamtune.train_model(
        "cnn-ae",
        data=str(prepared.path),
        results=str(root),
        name="vae",
        kind="vae",
        score="mse+ssim+latent",
        tta=True,
        epochs=1,
        progress=False,
    )
    out = root / "bundle"
    assert main(["export", str(folder), "--out", str(out), "--format", "onnx"]) == 0
    return out


def test_the_readme_recipe_scores_jpegs_as_hamtune_score_does(bundle, release_dir, tmp_path):
    code = recipe()
    assert len(code.strip().splitlines()) <= 30
    assert not re.search(r"^\s*(import|from)\s+hamtune", code, flags=re.M)
    script = tmp_path / "recipe.py"
    script.write_text(code)
    jpegs = sorted(release_dir.glob("HAM10000_images_part_1/*.jpg"))[:40] + sorted(SAMPLE.glob("*.jpg"))[:20]
    run = subprocess.run(
        [sys.executable, "-I", str(script), str(bundle), *map(str, jpegs)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    theirs = pd.read_csv(pd.io.common.StringIO(run.stdout), header=None, names=["image", "score", "flagged"])
    csv = tmp_path / "hamtune.csv"
    assert main(["score", str(bundle), *map(str, jpegs), "--out", str(csv), "--no-progress"]) == 0
    mine = pd.read_csv(csv)
    assert list(theirs["image"]) == list(mine["image"]) == list(map(str, jpegs))
    error = (theirs["score"] - mine["score"]).abs() / mine["score"].abs().clip(lower=1)
    assert error.max() <= 1e-5  # relative (absolute below 1): float32 arithmetic in two runtimes, nothing more
    assert (theirs["flagged"] == mine["flagged"]).all()
    assert mine["score"].std() > 1e-2  # scores that differ, so matching them means something


def test_the_readme_recipe_scores_a_16_bit_png_as_hamtune_score_does(bundle, tmp_path):
    from PIL import Image

    script = tmp_path / "recipe.py"
    script.write_text(recipe())
    png = tmp_path / "grey16.png"
    ramp = (np.add.outer(np.arange(48), np.arange(64)) * 400).astype(np.uint16)
    Image.fromarray(ramp).save(png)  # uint16: mode I;16
    run = subprocess.run(
        [sys.executable, "-I", str(script), str(bundle), str(png)], cwd=tmp_path, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, run.stderr
    theirs = float(run.stdout.split(",")[1])
    csv = tmp_path / "hamtune.csv"
    assert main(["score", str(bundle), str(png), "--out", str(csv), "--no-progress"]) == 0
    assert theirs == pytest.approx(float(pd.read_csv(csv)["score"].iloc[0]), rel=1e-5, abs=1e-5)


def test_each_onnx_file_carries_its_preprocessing_and_scoring_contract(bundle):
    loaded = load_bundle(bundle)
    state = torch.load(bundle / "score.pt", weights_only=True)
    for name, layout in (("model.onnx", "NCHW"), ("score.onnx", "NHWC")):
        meta = ort.InferenceSession(str(bundle / name)).get_modelmeta().custom_metadata_map
        pre = loaded.preprocess
        assert (int(meta["size"]), meta["crop"], int(meta["channels"])) == (pre.size, pre.crop, pre.channels)
        assert meta["layout"] == layout and meta["channel_order"] == "RGB" and meta["resize"] == RESIZE_RULE
        assert meta["score"] == "mse+ssim+latent" and json.loads(meta["score_parts"]) == ["mse", "ssim", "latent"]
        assert float(meta["threshold"]) == loaded.threshold and meta["protocol"] == loaded.protocol
        constants = json.loads(meta["score_state"])
        assert constants["center"] == pytest.approx(state["center"]) and constants["scale"] == pytest.approx(state["scale"])
        np.testing.assert_allclose(constants["latent_precision"], state["latent_precision"].numpy(), rtol=1e-6)
    session = ort.InferenceSession(str(bundle / "score.onnx"))
    assert [(i.name, i.type) for i in session.get_inputs()] == [("images", "tensor(uint8)")]
    assert [o.name for o in session.get_outputs()] == ["score"]
