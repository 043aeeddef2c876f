"""Priors added to the gradient distance: on the images, and on the batch statistics they make."""

from __future__ import annotations

import torch

from attacks.batch_statistics import LayerStatistics


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontally and vertically adjacent pixels of (..., H, W)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


def batch_statistics_distance(
    steps: list[dict[str, tuple[torch.Tensor, torch.Tensor]]],
    targets: dict[str, LayerStatistics],
) -> torch.Tensor:
    """Σ over BatchNorm layers of ‖μ − μ*‖² + ‖σ² − σ²*‖² (GradInversion's BN prior): μ, σ² the
    dummy batches' channel mean and unbiased variance, one dict per local step (``steps``)
    combined with the target's step weights; μ*, σ²* the target's."""
    terms = []
    for name, target in targets.items():
        pairs = list(zip(target.weights, steps, strict=True))
        mean = sum(weight * step[name][0] for weight, step in pairs)
        var = sum(weight * step[name][1] for weight, step in pairs)
        terms.append(((mean - target.mean) ** 2).sum() + ((var - target.var) ** 2).sum())
    return torch.stack(terms).sum()
