"""Gradient distances: how far a dummy batch's gradient is from the observed one."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

GradientDistance = Callable[[Sequence[torch.Tensor], Sequence[torch.Tensor]], torch.Tensor]


def l2_distance(grads: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """Sum of squared differences over every parameter (DLG, Zhu et al. 2019)."""
    return sum(((g - t) ** 2).sum() for g, t in zip(grads, target, strict=True))


def cosine_distance(grads: Sequence[torch.Tensor], target: Sequence[torch.Tensor]) -> torch.Tensor:
    """1 − cosine similarity of all parameters stacked (Geiping et al. 2020), in [0, 2]."""
    dot = sum((g * t).sum() for g, t in zip(grads, target, strict=True))
    grads_norm = sum((g * g).sum() for g in grads).sqrt()
    target_norm = sum((t * t).sum() for t in target).sqrt()
    return 1 - dot / (grads_norm * target_norm).clamp_min(1e-12)


OBJECTIVES: dict[str, GradientDistance] = {"l2": l2_distance, "cosine": cosine_distance}
