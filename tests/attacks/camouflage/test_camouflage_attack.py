"""The attack lowers the detector's car score through the DTN pipeline within a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attacks.camouflage.attack import (
    PROJECTIONS,
    SCORE_FLOOR,
    AttackScenes,
    camouflage,
    car_score_loss,
    dtn_images,
    initial_pattern,
    render_attack_scenes,
)
from attacks.camouflage.detector import CAR_LABEL, car_detections
from attacks.camouflage.dtn import DTN
from attacks.camouflage.renderer import (
    TILE_SIZE_M,
    periods_per_width,
    render_image,
    sample_scene_views,
    sample_views,
)


def _score(pattern: torch.Tensor, detector: nn.Module, dtn: DTN, scenes: AttackScenes) -> float:
    """The attack's loss (every car score) of the pattern laid on the surface of every view."""
    with torch.no_grad():
        every = torch.arange(len(scenes.views))
        images = dtn_images(pattern, dtn, scenes, every, "surface")
        found = car_detections(detector, images, CAR_LABEL)
        return float(car_score_loss(found, scenes.boxes)[0])


def test_two_render_processes_give_the_scenes_one_gives(attack_scenes: AttackScenes) -> None:
    two = render_attack_scenes(sample_scene_views(4, 7), size=32, spp=2, tile_m=0.6, workers=2)

    for field in ("x_ref", "masks", "periods"):
        assert torch.equal(getattr(two, field), getattr(attack_scenes, field)), field
    for a, b in zip(two.paint, attack_scenes.paint, strict=True):
        assert all(torch.equal(getattr(a, k), getattr(b, k)) for k in ("uv", "pixel", "share"))
        # Tensors from the workers come by plain pickle, not through shared memory (which
        # Docker caps at 64 MB).
        assert not any(getattr(a, k).is_shared() for k in ("uv", "pixel", "share"))
    assert two.views == attack_scenes.views
    assert all(torch.equal(a, b) for a, b in zip(two.boxes, attack_scenes.boxes, strict=True))


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_attack_loss_falls(
    tiny_detector: nn.Module, attack_scenes: AttackScenes, projection: str
) -> None:
    dtn = DTN(width=8)
    # The same seed draws the same views and jitter each step, so lr 0 is the paired baseline:
    # the random start pattern under exactly the jitter the attack saw.
    run = {"car_label": CAR_LABEL, "steps": 20, "projection": projection}
    still = camouflage(attack_scenes, dtn, tiny_detector, lr=0.0, **run)
    moved = camouflage(attack_scenes, dtn, tiny_detector, lr=0.1, **run)

    torch.testing.assert_close(still.pattern, initial_pattern(0), atol=0.02, rtol=0)
    assert moved.losses[0] == still.losses[0]
    assert not torch.equal(moved.pattern, still.pattern)
    # The plane's loss is a draw over jitter whose detections come and go at 32² (paired
    # differences of ±1 either way in 20–40 steps, whatever the lr): only one pose's falls.
    if projection == "surface":
        assert sum(moved.losses[-8:]) < sum(still.losses[-8:])
        assert _score(moved.pattern, tiny_detector, dtn, attack_scenes) < _score(
            still.pattern, tiny_detector, dtn, attack_scenes
        )
    assert moved.pattern.shape == (3, 16, 16)
    assert moved.pattern.min() >= 0 and moved.pattern.max() <= 1


@pytest.mark.parametrize("projection", PROJECTIONS)
def test_dtn_images_are_differentiable_in_the_pattern(
    attack_scenes: AttackScenes, projection: str
) -> None:
    pattern = initial_pattern(3).requires_grad_(True)
    every = torch.arange(len(attack_scenes.views))
    images = dtn_images(pattern, DTN(width=8), attack_scenes, every, projection)
    images.sum().backward()

    assert pattern.grad is not None and pattern.grad.abs().sum() > 0
    # Outside the car the image is the original scene, untouched.
    outside = attack_scenes.masks == 0
    torch.testing.assert_close(
        images.detach().permute(0, 2, 3, 1)[outside],
        attack_scenes.x_ref.permute(0, 2, 3, 1)[outside],
    )


def test_the_loss_counts_the_car_scores_above_the_floor() -> None:
    logit = lambda p: float(np.log(p / (1 - p)))  # noqa: E731
    car = torch.tensor([[10.0, 10.0, 30.0, 20.0]])
    scores = torch.tensor([0.5, 0.75, 0.9, 0.001]).requires_grad_(True)
    boxes = torch.tensor([[10.0, 10, 30, 20], [11, 10, 30, 21], [40, 40, 50, 50], [10, 10, 30, 20]])
    found = [
        {"scores": scores, "boxes": boxes},
        {"scores": torch.zeros(0), "boxes": torch.zeros(0, 4)},
    ]
    loss, top = car_score_loss(found, [car, car])
    loss.backward()

    # The first two find the car; the third is elsewhere, the fourth under the floor already.
    floor = logit(SCORE_FLOOR)
    assert float(loss.detach()) == pytest.approx((logit(0.5) - floor + logit(0.75) - floor) / 2)
    torch.testing.assert_close(top.detach(), torch.tensor([0.75, 0.0]))
    expected = torch.tensor([1 / (0.5 * 0.5), 1 / (0.75 * 0.25), 0.0, 0.0]) / 2
    torch.testing.assert_close(scores.grad, expected)


def test_tile_size_sets_the_pattern_scale_in_renderer_and_pipeline() -> None:
    view = sample_views(1, 2)[0]
    pattern = initial_pattern(1)
    flat = (0.2, 0.5, 0.8)

    assert periods_per_width(view, 2 * TILE_SIZE_M) == pytest.approx(periods_per_width(view) / 2)
    assert not np.array_equal(
        render_image(view, pattern, 32, 2), render_image(view, pattern, 32, 2, tile_m=2.4)
    )
    np.testing.assert_allclose(  # a flat colour looks the same at any tile size
        render_image(view, flat, 32, 2), render_image(view, flat, 32, 2, tile_m=2.4), atol=1e-6
    )
