"""Every score part as an exported ONNX score graph: only operators the program gate admits, a batch left free
(a graph traced on 2 images scores 5), and the scores PyTorch computes. A new part is tested by being added."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hamtune.export.programs import ONNX_OPS, ScoreGraph, _export_onnx
from hamtune.models import build_model
from hamtune.train.config import TrainConfig
from hamtune.train.evaluate import ScoreState
from hamtune.train.scores import PARTS

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", sorted(PARTS))
def test_every_score_part_exports_to_onnx_with_a_free_batch_and_pytorchs_scores(name, tmp_path):
    import onnx
    import onnxruntime

    torch.manual_seed(0)
    config = TrainConfig(arch="cnn", kind="vae", latent_dim=4, cnn_channels=4, cnn_blocks=2, image_size=32, score=name)
    model = build_model(config.model_spec(), (3, 32, 32)).eval()
    state = ScoreState(torch.zeros(4), torch.eye(4))
    graph = ScoreGraph(model, config, state).eval()
    images = torch.randint(0, 256, (5, 32, 32, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(1))
    path = tmp_path / "score.onnx"
    _export_onnx(graph, images[:2], path, (["images"], ["score"]), {})
    proto = onnx.load(str(path))
    used = {node.op_type for node in proto.graph.node} | {node.op_type for f in proto.functions for node in f.node}
    assert used <= ONNX_OPS, sorted(used - ONNX_OPS)
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    scored = session.run(["score"], {"images": images.numpy()})[0]
    with torch.no_grad():
        expected = graph(images).numpy()
    np.testing.assert_allclose(scored, expected, rtol=1e-4, atol=1e-5)
