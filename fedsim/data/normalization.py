"""Per-channel normalisation between [0, 1] pixels and the model's input scale."""

from __future__ import annotations

import torch

from fedsim.data.registry import DatasetSpec
from fedsim.errors import UserInputError


def _channel_stats(images: torch.Tensor, spec: DatasetSpec) -> tuple[torch.Tensor, torch.Tensor]:
    if images.dim() < 3 or images.shape[-3] != spec.channels:
        raise UserInputError(
            f"{spec.name} images need shape (..., {spec.channels}, H, W); got {tuple(images.shape)}"
        )
    mean = torch.tensor(spec.mean, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    std = torch.tensor(spec.std, dtype=images.dtype, device=images.device).view(-1, 1, 1)
    return mean, std


def normalize(images: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """Map [0, 1] pixels of shape (..., C, H, W) to ``(x - mean) / std`` per channel."""
    mean, std = _channel_stats(images, spec)
    return (images - mean) / std


def denormalize(images: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """Invert ``normalize``: map model inputs back to [0, 1] pixels (not clamped)."""
    mean, std = _channel_stats(images, spec)
    return images * std + mean
