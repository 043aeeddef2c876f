"""The ceiling of a generator prior: how close each stage's search space can get to given images.

An oracle, not an attack: it is handed the target images and fits each stage's input to them
by pixel loss, under GIFD's own constraints (the latent on its sphere, then each later stage's
input within the l1 ball of ``radius`` × the l1 norm of the map the previous stage produced,
as :class:`~attacks.search_spaces.GeneratorSpace` keeps it) and GIFD's schedule (Adam, cosine
decay restarted at every stage, several random starts, each carried through every stage, the
best per image reported). No gradient
inversion can find an image its stage cannot express, so the PSNR per stage bounds what GIFD
(and latent-only search, stage 0) could reach with that generator.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from attacks.metrics import psnr
from attacks.search_spaces import GeneratorSpace, PixelBox


@dataclass(frozen=True)
class StageFit:
    """The images stage ``stage`` reaches, and their PSNR against the targets (per image)."""

    stage: int
    images: torch.Tensor
    psnr: tuple[float, ...]


def fit_stages(
    generator: nn.Module,
    targets: torch.Tensor,
    labels: torch.Tensor | None = None,
    *,
    steps: int = 500,
    lr: float = 0.1,
    radius: float = 0.5,
    restarts: int = 4,
    seed: int = 0,
    progress: Callable[[float], None] | None = None,
) -> list[StageFit]:
    """Fit each stage's input in turn to ``targets`` (N, C, H, W in [0, 1]); ``labels`` condition
    a class-conditional generator. One fit per stage, in order; ``progress`` gets the fraction
    of stages done after each."""
    if getattr(generator, "conditional", False):
        if labels is None:
            raise ValueError("a class-conditional generator's ceiling needs the images' labels")
        generator.condition(labels.repeat(restarts))  # restarts × images, restart-major
    count = len(targets)
    box = PixelBox((0.0,) * targets.shape[1], (1.0,) * targets.shape[1], targets.device)
    rng = torch.Generator().manual_seed(seed)
    start = torch.randn(restarts, count, generator.latent_dim, generator=rng)
    fits: list[StageFit] = []
    for stage in range(len(generator.stages)):
        space = GeneratorSpace(
            generator,
            stage,
            start,
            box,
            radius=radius * start.flatten(2).abs().sum(-1) if stage else None,
        )
        _fit(space, targets.expand(restarts, *targets.shape), steps, lr)
        with torch.no_grad():
            reached = _images(space)  # restarts × images × C × H × W
            best = (reached - targets).flatten(2).pow(2).mean(-1).argmin(0)
            images = reached[best, torch.arange(count)]
            fits.append(StageFit(stage, images, tuple(psnr(images, targets).tolist())))
            # Each restart goes on from its own map, as the engine's restarts do.
            flat = space.params.detach().flatten(0, 1)
            produced = generator.stages[stage](flat)
            start = produced.view(restarts, count, *produced.shape[1:])
        if progress is not None:
            progress(len(fits) / len(generator.stages))
    return fits


def _images(space: GeneratorSpace) -> torch.Tensor:
    """All restarts' images at once (restarts × images × C × H × W), in [0, 1]."""
    params = space.params
    flat = space.images(params.flatten(0, 1))
    return flat.view(*params.shape[:2], *flat.shape[1:])


def _fit(space: GeneratorSpace, targets: torch.Tensor, steps: int, lr: float) -> None:
    """Adam with cosine decay on the pixel error; leaves each restart's input at the best point
    it visited (so a stage never reports worse than where it started)."""
    optimizer = torch.optim.Adam([space.params], lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    best = space.params.detach().clone()
    best_error = torch.full(space.params.shape[:2], torch.inf)
    for step in range(steps + 1):
        errors = (_images(space) - targets).flatten(2).pow(2).mean(-1)  # restarts × images
        with torch.no_grad():
            better = errors < best_error
            best_error = torch.where(better, errors, best_error)
            best[better] = space.params[better]
        if step == steps:
            break
        optimizer.zero_grad()
        errors.mean().backward()
        optimizer.step()
        schedule.step()
        space.project_()
    with torch.no_grad():
        space.params.copy_(best)
