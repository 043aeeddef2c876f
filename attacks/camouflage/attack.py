"""DTA's attack: a 16×16 pattern (or another square) laid on each training view's car, rendered by
the DTN, pasted over the original scene (x_adv = DTN(x_ref, η) + x_orig ⊙ (1 − x_seg)), and
optimised with Adam to push every car detection that would count as finding the car (IoU > 0.5 with
its box) under the detector's false alarms: AP@0.5 ranks detections, so a car score only costs AP
once it falls below the false alarms' scores; the loss is each such score's log-odds above a floor,
which keep their pull as s falls (−log(1 − s) fades), and lowering only the top box lets the next
take its place.

Two projections lay the pattern: ``surface`` reads it at the texture coordinates the renderer's
AOV gives for each pixel (exactly where Mitsuba puts each texel), ``plane`` is DTA's repeated
texture projection, tiled over the image plane under random shift / scale / rotation jitter."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import torch
from torch import nn
from torchvision.ops import box_iou

from attacks.camouflage.detection_data import mask_box
from attacks.camouflage.detector import car_detections
from attacks.camouflage.dtn import DTN, paste
from attacks.camouflage.pattern_renders import PATTERN_SIDE, random_pattern
from attacks.camouflage.renderer import (
    TILE_SIZE_M,
    View,
    periods_per_width,
    render_image,
    render_surface,
)
from attacks.camouflage.renderer.pool import map_renders
from attacks.camouflage.texture import (
    Jitter,
    PaintSamples,
    paint_samples,
    project_texture,
    sample_jitter,
    surface_etas,
)
from fedsim.errors import UnknownNameError

# The plane projection's jitter scale is drawn within this factor of the renderer's own tiling.
SCALE_SPREAD = (0.8, 1.25)
PROJECTIONS = ("surface", "plane")
# A detection finds the car above this IoU with its true box (as evaluation counts it); the loss
# stops lowering a car score once it is under SCORE_FLOOR, below a trained detector's false
# alarms (their highest score on a held-out view is about 0.01).
IOU_HIT, SCORE_FLOOR = 0.5, 0.005
# The surface projection reads texture coordinates on a grid this many times finer than the
# image and averages each pixel's samples, as Mitsuba's pixel filter does: where a texel spans
# under a pixel or two, fewer samples alias. A 128×128 pattern on far views needs 4: with 2,
# the pipeline scored it AP 0.423 held out and the renderer 0.554 (issue 15's note).
SURFACE_SUPERSAMPLE = 4


@dataclass(frozen=True)
class AttackScenes:
    """The views the attack sees: ``x_ref`` (V, 3, H, W) sRGB in [0, 1] rendered in the
    reference paint (also x_orig, the scene around the car), ``masks`` (V, H, W) car coverage,
    ``periods`` (V,) texture repeats per image width as the renderer tiles them, one repeat
    per ``tile_m`` metres of the car's surface, each view's ``paint`` samples (texture
    coordinates in those repeats, on a grid SURFACE_SUPERSAMPLE times finer than the image);
    ``boxes`` each view's true car box (B, 4) xyxy pixels, B ≤ 1."""

    x_ref: torch.Tensor
    masks: torch.Tensor
    periods: torch.Tensor
    paint: list[PaintSamples]
    boxes: list[torch.Tensor]
    views: list[View]
    tile_m: float


@dataclass(frozen=True)
class AttackResult:
    """The optimised ``pattern`` (3, side, side) sRGB in [0, 1], and at each Adam step the loss
    (:func:`car_score_loss` of the batch) and ``scores``, the batch's mean highest car score s
    among the detections that find the car."""

    pattern: torch.Tensor
    losses: list[float]
    scores: list[float]


def render_attack_scenes(
    views: list[View], size: int, spp: int, tile_m: float = TILE_SIZE_M, workers: int = 1
) -> AttackScenes:
    """Render each view in the reference paint with its car mask and painted surface, in
    Mitsuba, in ``workers`` processes."""
    rendered = map_renders(partial(_attack_view, size=size, spp=spp, tile_m=tile_m), views, workers)
    paints, masks, images = zip(*rendered, strict=True)
    coverage = torch.from_numpy(np.stack(masks))
    return AttackScenes(
        x_ref=image_batch(list(images)),
        masks=coverage,
        boxes=[mask_box(mask) for mask in coverage],
        periods=torch.tensor([periods_per_width(view, tile_m) for view in views]),
        paint=list(paints),
        views=views,
        tile_m=tile_m,
    )


def _attack_view(
    view: View, size: int, spp: int, tile_m: float
) -> tuple[PaintSamples, np.ndarray, np.ndarray]:
    """One view's paint samples (supersampled), car mask (their AOV pass's coverage; the fine
    grid stays in the worker) and reference render."""
    surface = render_surface(view, SURFACE_SUPERSAMPLE * size, tile_m)
    paint = paint_samples(
        torch.from_numpy(surface.uv), torch.from_numpy(surface.paint), SURFACE_SUPERSAMPLE
    )
    return paint, surface.coverage(SURFACE_SUPERSAMPLE), render_image(view, None, size, spp)


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


def project(
    pattern: torch.Tensor,
    scenes: AttackScenes,
    chosen: torch.Tensor,
    projection: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """η (N, 3, H, W) of ``pattern`` on the ``chosen`` views' cars by ``projection`` (see the
    module); the plane projection jitters with ``generator``, else lies as the renderer tiles."""
    if projection not in PROJECTIONS:
        raise UnknownNameError("projection", projection, PROJECTIONS)
    if projection == "surface":
        return surface_etas(pattern, [scenes.paint[i] for i in chosen], scenes.masks[chosen])
    periods = scenes.periods[chosen]
    jitters = view_jitters(generator, periods) if generator else rest_jitters(periods)
    return torch.stack(
        [
            project_texture(pattern, scenes.masks[i], jitter)
            for i, jitter in zip(chosen, jitters, strict=True)
        ]
    )


def dtn_images(
    pattern: torch.Tensor,
    dtn: DTN,
    scenes: AttackScenes,
    chosen: torch.Tensor,
    projection: str,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """x_adv (N, 3, H, W): ``pattern`` projected on the ``chosen`` views' cars, through the DTN,
    pasted over their reference scenes; differentiable in the pattern."""
    x_ref, masks = scenes.x_ref[chosen], scenes.masks[chosen]
    etas = project(pattern, scenes, chosen, projection, generator)
    return paste(dtn(x_ref, masks, etas), x_ref, masks)


def car_score_loss(
    found: list[dict[str, torch.Tensor]], targets: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, top): the mean over images of Σ (max(logit s, logit SCORE_FLOOR) − logit
    SCORE_FLOOR) over the car detections that would count as finding the car (IoU > 0.5 with its
    true box ``targets`` (B, 4), every one where it has none), and (N,) each image's highest such
    score (0 where none). Log-odds keep their pull as s falls, where −log(1 − s) fades with s;
    a score already under the floor, below the detector's false alarms, is left alone."""
    floor = math.log(SCORE_FLOOR / (1 - SCORE_FLOOR))
    per_image, top = [], []
    for detections, target in zip(found, targets, strict=True):
        scores = detections["scores"].clamp(1e-7, 1 - 1e-7)
        if len(target) and len(scores):
            scores = scores[box_iou(detections["boxes"], target).max(dim=1).values > IOU_HIT]
        odds = torch.log(scores) - torch.log1p(-scores)
        per_image.append((odds.clamp(min=floor) - floor).sum())
        top.append(scores.max() if len(scores) else scores.new_zeros(()))
    return torch.stack(per_image).mean(), torch.stack(top)


def initial_pattern(seed: int, side: int = PATTERN_SIDE) -> torch.Tensor:
    """The attack's start, (3, side, side) uniform random sRGB noise drawn from ``seed``: the
    ``random`` texture of the same seed (and side)."""
    noise = random_pattern(np.random.default_rng(seed), cells=side, side=side)
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
    projection: str = "surface",
    seed: int = 0,
    side: int = PATTERN_SIDE,
    progress: Callable[[int, float], None] | None = None,
    refine: Callable[[int, torch.Tensor], None] | None = None,
) -> AttackResult:
    """Optimise a ``side``×``side`` pattern for ``steps`` Adam steps, each on ``batch_size``
    training views drawn with replacement (under fresh jitter for the plane projection); the
    pattern is sigmoid(logits), so stays in [0, 1]. ``progress(step, score)`` follows each step,
    then ``refine(step, pattern)`` (e.g. a dtn_refinement.DTNRefiner, which may change the DTN).
    Leaves ``dtn`` and ``detector`` frozen, in eval mode, their weights channels-last."""
    generator = torch.Generator().manual_seed(seed)
    start = initial_pattern(seed, side).clamp(0.02, 0.98)
    logits = torch.logit(start).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=lr)
    # Both networks' weights go channels-last, oneDNN's fast layout for CPU convolutions: a step
    # of 8 views at 128² takes 0.40 s instead of 0.45 s here (the same arithmetic, reordered).
    for model in (dtn, detector):
        model.eval().requires_grad_(False).to(memory_format=torch.channels_last)
    losses, scores = [], []
    for step in range(1, steps + 1):
        chosen = torch.randint(len(scenes.views), (batch_size,), generator=generator)
        images = dtn_images(torch.sigmoid(logits), dtn, scenes, chosen, projection, generator)
        found = car_detections(detector, images, car_label)
        loss, top = car_score_loss(found, [scenes.boxes[i] for i in chosen])
        optimiser.zero_grad(set_to_none=True)
        if loss.requires_grad:  # else the detector found no car in any view: nothing to lower
            loss.backward()
            optimiser.step()
        losses.append(float(loss.detach()))
        scores.append(float(top.detach().mean()))
        if progress:
            progress(step, scores[-1])
        if refine:
            refine(step, torch.sigmoid(logits).detach())
    return AttackResult(pattern=torch.sigmoid(logits).detach(), losses=losses, scores=scores)
