"""The model card names every file of its bundle, the exact resize, the golden vectors and a threshold that flags
(almost) every validation image."""

from __future__ import annotations

from hamtune.data.images import RESIZE_RULE
from hamtune.export.bundle import model_card
from hamtune.train.config import TrainConfig

INFO = {
    "sweep": "s",
    "trial_id": "t1",
    "rank": 1,
    "ranked_by": "val_auroc",
    "epochs_run": 1,
    "seed": 0,
    "threshold": 0.01,
    "model": {"n_params": 1000},
    "test_set": "split",
    "metrics": {"val_auroc": 0.5, "test_auroc": 0.5},
    "data": {"name": "synth", "fingerprint": "abc", "count": 10, "synthetic": True},
    "protocol": {"name": "cancer", "normal": ["nv"], "anomalous": ["mel"]},
    "preprocess": {"size": 28, "crop": "center", "channels": 3, "input_range": "unit"},
    "golden": {"file": "golden.npz", "count": 4, "source": "validation split of synth", "shape": [4, 28, 28, 3]},
    "threshold_check": {"warning": "the validation threshold 0.01 is at or below the lowest validation score (0.02): it flags every image"},
}
FILES = ["MODEL_CARD.md", "bundle.json", "config.json", "golden.npz", "model.onnx", "model.pt", "model.pt2", "score.onnx", "score.pt"]


def test_the_card_lists_every_file_the_resize_the_golden_vectors_and_the_threshold_warning():
    card = model_card(INFO, TrainConfig(), FILES)
    for name in FILES:
        assert f"- `{name}`: " in card, name
    assert RESIZE_RULE in card and "hamtune verify THIS_FOLDER" in card and "4 input image(s) (validation split of synth)" in card
    assert "**Warning:** the validation threshold 0.01 is at or below the lowest validation score" in card
    quiet = model_card({**INFO, "threshold_check": {"warning": None}}, TrainConfig(), FILES)
    assert "Warning" not in quiet
