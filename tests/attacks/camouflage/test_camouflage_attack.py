"""The attack lowers the detector's car score through the DTN pipeline within a few steps."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from attacks.camouflage.attack import (
    AttackScenes,
    camouflage,
    dtn_images,
    initial_pattern,
    rest_jitters,
)
from attacks.camouflage.detector import CAR_LABEL, car_confidence
from attacks.camouflage.dtn import DTN
from attacks.camouflage.renderer import periods_per_width, render_image, sample_views


def _score(pattern: torch.Tensor, detector: nn.Module, dtn: DTN, scenes: AttackScenes) -> float:
    """Mean highest car score of the pattern on every view, jitter-free."""
    with torch.no_grad():
        images = dtn_images(pattern, dtn, scenes.x_ref, scenes.masks, rest_jitters(scenes.periods))
        return float(car_confidence(detector, images, CAR_LABEL).mean())


def test_attack_loss_falls(tiny_detector: nn.Module, attack_scenes: AttackScenes) -> None:
    dtn = DTN(width=8)
    # The same seed draws the same views and jitter each step, so lr 0 is the paired baseline:
    # the random start pattern under exactly the jitter the attack saw.
    still = camouflage(attack_scenes, dtn, tiny_detector, car_label=CAR_LABEL, steps=10, lr=0.0)
    moved = camouflage(attack_scenes, dtn, tiny_detector, car_label=CAR_LABEL, steps=10, lr=0.2)

    torch.testing.assert_close(still.pattern, initial_pattern(0), atol=0.02, rtol=0)
    assert moved.losses[0] == still.losses[0]
    assert sum(moved.losses[-4:]) < sum(still.losses[-4:])
    assert _score(moved.pattern, tiny_detector, dtn, attack_scenes) < _score(
        still.pattern, tiny_detector, dtn, attack_scenes
    )
    assert moved.pattern.shape == (3, 16, 16)
    assert moved.pattern.min() >= 0 and moved.pattern.max() <= 1


def test_dtn_images_are_differentiable_in_the_pattern(attack_scenes: AttackScenes) -> None:
    pattern = initial_pattern(3).requires_grad_(True)
    images = dtn_images(
        pattern, DTN(width=8), attack_scenes.x_ref, attack_scenes.masks,
        rest_jitters(attack_scenes.periods),
    )  # fmt: skip
    images.sum().backward()

    assert pattern.grad is not None and pattern.grad.abs().sum() > 0
    # Outside the car the image is the original scene, untouched.
    outside = attack_scenes.masks == 0
    torch.testing.assert_close(
        images.detach().permute(0, 2, 3, 1)[outside],
        attack_scenes.x_ref.permute(0, 2, 3, 1)[outside],
    )


def test_tile_size_sets_the_pattern_scale_in_renderer_and_pipeline() -> None:
    view = sample_views(1, 2)[0]
    pattern = initial_pattern(1)
    flat = (0.2, 0.5, 0.8)

    assert periods_per_width(view, 1.2) == pytest.approx(periods_per_width(view) / 2)
    assert not np.array_equal(
        render_image(view, pattern, 32, 2), render_image(view, pattern, 32, 2, tile_m=2.4)
    )
    np.testing.assert_allclose(  # a flat colour looks the same at any tile size
        render_image(view, flat, 32, 2), render_image(view, flat, 32, 2, tile_m=2.4), atol=1e-6
    )
