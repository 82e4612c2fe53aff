"""The score-part registry as a contract: every entry of train/scores.PARTS is computed by the evaluation, stated
in the exported programs' rule and on model cards, and has an anomaly map exactly when it says so. A new part is
tested by being added."""

from __future__ import annotations

import pytest
import torch

from hamtune.export.maps import MAP_PARTS, view_maps
from hamtune.export.programs import SCORE_RULE
from hamtune.models import build_model
from hamtune.train.config import TrainConfig
from hamtune.train.evaluate import score_batch
from hamtune.train.scores import PARTS


@pytest.mark.parametrize("name", sorted(PARTS))
def test_every_score_part_is_computed_stated_and_mapped_as_its_entry_says(name):
    part = PARTS[name]
    torch.manual_seed(0)
    config = TrainConfig(arch="mlp", kind="vae", latent_dim=4, mlp_width=16, mlp_depth=1, image_size=16)
    model = build_model(config.model_spec(), (3, 16, 16)).eval()
    x = torch.rand(3, 3, 16, 16)
    with torch.no_grad():
        terms = score_batch(model, x, config, latent=(torch.zeros(4), torch.eye(4)))
        maps = view_maps(x, model(x)[0], config.input_range)
    assert terms[part.term].shape == (3,) and torch.isfinite(terms[part.term]).all()
    assert part.words and f"{name} = {part.rule}" in SCORE_RULE
    assert (name in MAP_PARTS) == part.pixel_map == (name in maps)
    if part.pixel_map:  # a map's mean is the part's value (1 - similarity for a similarity)
        value = 1 - terms[part.term] if part.similarity else terms[part.term]
        assert torch.allclose(maps[name].flatten(1).mean(1), value, rtol=1e-4, atol=1e-5)
