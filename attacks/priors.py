"""Priors added to the gradient distance: on the images, and on the batch statistics they make."""

from __future__ import annotations

import torch

from attacks.batch_statistics import LayerStatistics

_VARIANCE_FLOOR = 1e-5
"""Smallest target variance divided by: a channel a batch leaves constant (a dead ReLU's) would
otherwise divide by zero."""


def total_variation(images: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference of horizontally and vertically adjacent pixels of (..., H, W)."""
    dx = (images[..., :, 1:] - images[..., :, :-1]).abs().mean()
    dy = (images[..., 1:, :] - images[..., :-1, :]).abs().mean()
    return dx + dy


def batch_statistics_distance(
    steps: list[dict[str, tuple[torch.Tensor, torch.Tensor]]],
    targets: dict[str, LayerStatistics],
) -> torch.Tensor:
    """GradInversion's BatchNorm prior in each channel's own units: Σ over layers of the channel
    mean of ((μ − μ*)² / σ²* + ((σ² − σ²*) / σ²*)²), with μ, σ² the dummy batches' channel mean
    and unbiased variance, one dict per local step (``steps``) combined with the target's step
    weights, and μ*, σ²* the target's.

    Dividing by the target variance makes the prior independent of each channel's scale: a
    trained network's BatchNorm inputs have variances of 3–60 where a fresh one's have 0.1–0.3,
    and the unscaled squared distance grew 20,000-fold with them, drowning the gradient term.
    """
    terms = []
    for name, target in targets.items():
        pairs = list(zip(target.weights, steps, strict=True))
        mean = sum(weight * step[name][0] for weight, step in pairs)
        var = sum(weight * step[name][1] for weight, step in pairs)
        scale = target.var.clamp_min(_VARIANCE_FLOOR)
        mean_term = ((mean - target.mean) ** 2 / scale).mean()
        terms.append(mean_term + (((var - target.var) / scale) ** 2).mean())
    return torch.stack(terms).sum()
