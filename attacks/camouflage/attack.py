"""DTA's attack: a 16×16 pattern, tiled over each training view's car by the repeated texture
projection with random jitter, rendered by the DTN, pasted over the original scene
(x_adv = DTN(x_ref, η) + x_orig ⊙ (1 − x_seg)), and optimised with Adam to lower the
detector's highest car score s, averaged over views, through −log(1 − s): the score itself
saturates near 1 on a confident detector and then gives almost no gradient."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from attacks.camouflage.detector import car_confidence
from attacks.camouflage.dtn import DTN, paste
from attacks.camouflage.pattern_renders import PATTERN_SIDE, random_pattern
from attacks.camouflage.renderer import (
    TILE_SIZE_M,
    View,
    periods_per_width,
    render_image,
    render_mask,
)
from attacks.camouflage.texture import Jitter, project_texture, sample_jitter

# The jitter's scale is drawn within this factor of the renderer's own tiling at each view.
SCALE_SPREAD = (0.8, 1.25)


@dataclass(frozen=True)
class AttackScenes:
    """The views the attack sees: ``x_ref`` (V, 3, H, W) sRGB in [0, 1] rendered in the
    reference paint (also x_orig, the scene around the car), ``masks`` (V, H, W) car coverage,
    and ``periods`` (V,) texture repeats per image width as the renderer tiles them, one repeat
    per ``tile_m`` metres of the car's surface."""

    x_ref: torch.Tensor
    masks: torch.Tensor
    periods: torch.Tensor
    views: list[View]
    tile_m: float


@dataclass(frozen=True)
class AttackResult:
    """The optimised ``pattern`` (3, 16, 16) sRGB in [0, 1], and at each Adam step the loss
    (mean −log(1 − s) of the batch) and ``scores``, the batch's mean highest car score s."""

    pattern: torch.Tensor
    losses: list[float]
    scores: list[float]


def render_attack_scenes(
    views: list[View], size: int, spp: int, tile_m: float = TILE_SIZE_M
) -> AttackScenes:
    """Render each view in the reference paint with its car mask, in Mitsuba."""
    return AttackScenes(
        x_ref=image_batch([render_image(view, None, size, spp) for view in views]),
        masks=torch.from_numpy(np.stack([render_mask(view, size) for view in views])),
        periods=torch.tensor([periods_per_width(view, tile_m) for view in views]),
        views=views,
        tile_m=tile_m,
    )


def image_batch(images: list[np.ndarray]) -> torch.Tensor:
    """(H, W, 3) images → one (N, 3, H, W) float32 tensor."""
    return torch.from_numpy(np.stack(images).transpose(0, 3, 1, 2).copy())


def view_jitters(generator: torch.Generator, periods: torch.Tensor) -> list[Jitter]:
    """One random Jitter per view, its scale near the view's own repeats per image width."""
    low, high = SCALE_SPREAD
    return [
        sample_jitter(generator, scale_range=(low * float(p), high * float(p))) for p in periods
    ]


def rest_jitters(periods: torch.Tensor) -> list[Jitter]:
    """The jitter-free projection of each view: no shift or rotation, the renderer's scale."""
    return [Jitter(scale=float(p)) for p in periods]


def dtn_images(
    pattern: torch.Tensor,
    dtn: DTN,
    x_ref: torch.Tensor,
    masks: torch.Tensor,
    jitters: list[Jitter],
) -> torch.Tensor:
    """x_adv (N, 3, H, W): ``pattern`` projected on each car with its jitter, through the DTN,
    pasted over the reference scene; differentiable in the pattern."""
    etas = torch.stack(
        [
            project_texture(pattern, mask, jitter)
            for mask, jitter in zip(masks, jitters, strict=True)
        ]
    )
    return paste(dtn(x_ref, masks, etas), x_ref, masks)


def initial_pattern(seed: int) -> torch.Tensor:
    """The attack's start, (3, 16, 16) uniform random sRGB noise drawn from ``seed``: the
    ``random`` texture of the same seed."""
    noise = random_pattern(np.random.default_rng(seed), cells=PATTERN_SIDE)
    return torch.from_numpy(noise.transpose(2, 0, 1).copy())


def camouflage(
    scenes: AttackScenes,
    dtn: DTN,
    detector: nn.Module,
    *,
    car_label: int,
    steps: int,
    lr: float = 0.05,
    batch_size: int = 8,
    seed: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> AttackResult:
    """Optimise a pattern for ``steps`` Adam steps, each on ``batch_size`` training views drawn
    with replacement under fresh jitter; the pattern is sigmoid(logits), so stays in [0, 1].
    ``progress(step, score)`` follows each step."""
    generator = torch.Generator().manual_seed(seed)
    start = initial_pattern(seed).clamp(0.02, 0.98)
    logits = torch.logit(start).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=lr)
    dtn.eval().requires_grad_(False)
    detector.eval().requires_grad_(False)
    losses, scores = [], []
    for step in range(1, steps + 1):
        chosen = torch.randint(len(scenes.views), (batch_size,), generator=generator)
        jitters = view_jitters(generator, scenes.periods[chosen])
        images = dtn_images(
            torch.sigmoid(logits), dtn, scenes.x_ref[chosen], scenes.masks[chosen], jitters
        )
        confidence = car_confidence(detector, images, car_label)
        loss = -torch.log1p(-confidence.clamp(max=1 - 1e-6)).mean()
        optimiser.zero_grad(set_to_none=True)
        if loss.requires_grad:  # else the detector found no car in any view: nothing to lower
            loss.backward()
            optimiser.step()
        losses.append(float(loss.detach()))
        scores.append(float(confidence.detach().mean()))
        if progress:
            progress(step, scores[-1])
    return AttackResult(pattern=torch.sigmoid(logits).detach(), losses=losses, scores=scores)
