"""Renders of random textured patterns, which the DTN never sees in training, with the η each
one paints inside the car: the test of how far the DTN generalises beyond flat colours."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from attacks.camouflage.renderer import View, render_image, render_mask, render_surface
from attacks.camouflage.texture import paint_samples, surface_etas

PATTERN_SIDE = 16


@dataclass(frozen=True)
class PatternRenders:
    """``x_ref`` (V, 3, H, W), ``masks`` (V, H, W), and per view K patterns (V, K, 3, 16, 16) with
    their η and real renders, (V, K, 3, H, W), all sRGB in [0, 1]."""

    x_ref: torch.Tensor
    masks: torch.Tensor
    patterns: torch.Tensor
    etas: torch.Tensor
    renders: torch.Tensor
    views: list[View]


def random_pattern(
    rng: np.random.Generator, cells: int = 4, side: int = PATTERN_SIDE
) -> np.ndarray:
    """A (side, side, 3) sRGB pattern of ``cells``×``cells`` blocks of uniform random colour
    (``cells`` divides ``side``)."""
    block = side // cells
    return rng.random((cells, cells, 3)).astype(np.float32).repeat(block, 0).repeat(block, 1)


def render_patterns(
    views: list[View], patterns: int, size: int, spp: int, seed: int
) -> PatternRenders:
    """Render ``patterns`` random patterns on each view (drawn from ``seed`` and the view's place
    in the list) with its reference render, mask and surface."""
    x_ref, masks, drawn, etas, renders = [], [], [], [], []
    for index, view in enumerate(views):
        rng = np.random.default_rng([seed, index, PATTERN_SIDE])
        mask = torch.from_numpy(render_mask(view, size))
        surface = render_surface(view, size)
        paint = paint_samples(torch.from_numpy(surface.uv), torch.from_numpy(surface.paint), 1)
        x_ref.append(_chw(render_image(view, None, size, spp)))
        masks.append(mask)
        for _ in range(patterns):
            pattern = random_pattern(rng)
            chw = _chw(pattern)
            drawn.append(chw)
            etas.append(surface_etas(chw, [paint], mask[None])[0])
            renders.append(_chw(render_image(view, pattern, size, spp)))
    per_view = (len(views), patterns)
    return PatternRenders(
        x_ref=torch.stack(x_ref),
        masks=torch.stack(masks),
        patterns=torch.stack(drawn).reshape(*per_view, 3, PATTERN_SIDE, PATTERN_SIDE),
        etas=torch.stack(etas).reshape(*per_view, 3, size, size),
        renders=torch.stack(renders).reshape(*per_view, 3, size, size),
        views=views,
    )


def _chw(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) numpy → (3, H, W) float32 tensor."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1), dtype=np.float32))
