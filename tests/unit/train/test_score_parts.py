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
    config = TrainConfig(arch="mlp", kind="vae", latent_dim=4, mlp_width=16, mlp_depth=1, image_size=16, score=name)
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


def test_gradient_magnitude_similarity_is_one_for_the_same_edges_and_drops_where_an_edge_is_left_out():
    from hamtune.train import metrics

    image = torch.zeros(1, 3, 16, 16)
    image[..., 8:] = 1.0  # a vertical edge
    flat = torch.full_like(image, 0.5)  # a reconstruction that leaves the edge out
    same = metrics.gms_map(image, image.clone())
    assert same.shape == (1, 14, 14) and torch.equal(same, torch.ones_like(same))
    lost = metrics.gms_map(image, flat)
    assert lost[0, :, 6:8].max() < 0.01 and torch.equal(lost[0, :, :5], torch.ones(14, 5))  # only along the edge
    assert metrics.gms(image, flat).item() == pytest.approx(lost.mean().item())


def test_multi_scale_ssim_is_one_for_the_same_image_falls_with_damage_and_uses_the_scales_that_fit():
    from hamtune.train import metrics

    x = torch.rand((2, 3, 64, 64), generator=torch.Generator().manual_seed(0))
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(1))
    same = metrics.msssim(x, x.clone())
    slight, heavy = (metrics.msssim((x + level * noise).clamp(0, 1), x) for level in (0.05, 0.3))
    assert torch.allclose(same, torch.ones(2)) and (heavy < slight).all() and (slight < 1).all()
    blurred = torch.nn.functional.avg_pool2d(x, 2).repeat_interleave(2, -1).repeat_interleave(2, -2)
    assert (metrics.msssim(blurred, x) > metrics.ssim(blurred, x)).all()  # coarse scales forgive what the finest sees
