"""What a client may do to its update before sending it: clip, add noise, prune, quantize.

Each transform maps a dict of tensors (the update: a gradient, or returned − received
parameters) to a new dict, drawing any randomness from the generator it is given.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial

import torch

from defenses.specs import Clip, DefenseSpec, Gaussian, Prune, Quantize

Update = dict[str, torch.Tensor]
Transform = Callable[[Update, torch.Generator], Update]


def clip(update: Update, max_norm: float) -> Update:
    """Scale the whole update (all tensors as one vector) to L2 norm ≤ ``max_norm``."""
    norm = torch.sqrt(sum((t.double() ** 2).sum() for t in update.values()))
    scale = min(1.0, max_norm / (float(norm) + 1e-12))
    return {name: t * scale for name, t in update.items()}


def add_gaussian(update: Update, generator: torch.Generator, std: float) -> Update:
    """Add independent N(0, std²) noise to every entry."""
    return {
        name: t + std * torch.randn(t.shape, generator=generator, dtype=t.dtype)
        for name, t in update.items()
    }


def prune(update: Update, fraction: float) -> Update:
    """Zero, in each tensor, the ⌊fraction·n⌋ entries of smallest magnitude."""
    pruned = {}
    for name, t in update.items():
        k = int(fraction * t.numel())
        flat = t.flatten().clone()
        if k:
            flat[torch.argsort(flat.abs(), stable=True)[:k]] = 0
        pruned[name] = flat.view_as(t)
    return pruned


def quantize(update: Update, generator: torch.Generator, bits: int) -> Update:
    """Stochastic rounding of each tensor onto 2**bits evenly spaced levels in [min, max].

    Unbiased: the expected result equals the input. A tensor whose entries are all equal is
    left as it is.
    """
    levels = 2**bits - 1
    quantized = {}
    for name, t in update.items():
        low, high = t.min(), t.max()
        if high <= low:
            quantized[name] = t.clone()
            continue
        scaled = (t - low) / (high - low) * levels
        floor = scaled.floor()
        up = torch.rand(t.shape, generator=generator, dtype=t.dtype) < (scaled - floor)
        quantized[name] = (floor + up.to(t.dtype)).clamp(0, levels) / levels * (high - low) + low
    return quantized


def compose(transforms: Sequence[Transform]) -> Transform:
    """Apply ``transforms`` in order, all drawing from the one generator."""

    def apply(update: Update, generator: torch.Generator) -> Update:
        for transform in transforms:
            update = transform(update, generator)
        return update

    return apply


def update_transform(specs: Sequence[DefenseSpec]) -> Transform | None:
    """The update transforms among ``specs`` (clip, gaussian, prune, quantize) composed in their
    order, or None when there are none."""
    transforms: list[Transform] = []
    for spec in specs:
        params = spec.params
        if isinstance(params, Clip):
            transforms.append(_ignoring_generator(partial(clip, max_norm=params.max_norm)))
        elif isinstance(params, Gaussian):
            transforms.append(partial(add_gaussian, std=params.std))
        elif isinstance(params, Prune):
            transforms.append(_ignoring_generator(partial(prune, fraction=params.fraction)))
        elif isinstance(params, Quantize):
            transforms.append(partial(quantize, bits=params.bits))
    return compose(transforms) if transforms else None


def _ignoring_generator(function: Callable[[Update], Update]) -> Transform:
    return lambda update, _generator: function(update)
