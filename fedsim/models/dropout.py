"""Dropout that can remember the masks it draws, and replay masks it is given.

Clients train with the drawn masks and keep them as ground truth (what the Dropout Inversion
Attack's oracle baseline is granted); attackers plug continuous masks into the same layers to
search them jointly with the images (Scheliga et al., AAAI 2023).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import torch
from torch import nn


class MaskedDropout(nn.Dropout):
    """``nn.Dropout`` computing x·m/(1−p) with a mask m it draws, records or is given.

    A plugged mask (any values, batch first like the input) is applied in every mode; without
    one the layer is ordinary dropout: Bernoulli(1−p) masks in training, identity in eval.
    """

    def __init__(self, p: float = 0.5) -> None:
        super().__init__(p)
        self.plugged: torch.Tensor | None = None
        self.recorded: list[torch.Tensor] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the plugged mask, or draw (and record) one in training mode."""
        if self.plugged is not None:
            return x * self.plugged / (1 - self.p)
        if not self.training or self.p == 0:
            return x
        mask = torch.empty_like(x).bernoulli_(1 - self.p)
        if self.recorded is not None:
            self.recorded.append(mask.bool())
        return x * mask / (1 - self.p)


def dropout_layers(model: nn.Module) -> dict[str, MaskedDropout]:
    """The model's mask-aware dropout layers by module name, in forward-definition order."""
    return {name: m for name, m in model.named_modules() if isinstance(m, MaskedDropout)}


def client_mode(model: nn.Module, train_mode: bool) -> nn.Module:
    """Set the mode a client computes its update in and return the model.

    ``train_mode`` decides BatchNorm (batch statistics or running ones); dropout is a
    training-time defense, so its layers draw masks whenever their rate is above zero.
    """
    model.train(train_mode)
    for layer in dropout_layers(model).values():
        layer.train(True)
    return model


@contextmanager
def recording_masks(model: nn.Module) -> Iterator[dict[str, torch.Tensor]]:
    """Record every mask the model's dropout layers draw while the block runs.

    The yielded dict is filled on exit: per layer name, the masks of every forward pass
    concatenated along the batch dimension (so with one pass per local step they line up with
    the images in step order), as bool tensors. Layers with rate 0 record nothing.
    """
    layers = {n: m for n, m in dropout_layers(model).items() if m.p > 0}
    for layer in layers.values():
        layer.recorded = []
    masks: dict[str, torch.Tensor] = {}
    try:
        yield masks
        masks.update(
            {name: torch.cat(layer.recorded) for name, layer in layers.items() if layer.recorded}
        )
    finally:
        for layer in layers.values():
            layer.recorded = None


@contextmanager
def plugged_masks(model: nn.Module, masks: Mapping[str, torch.Tensor]) -> Iterator[None]:
    """Apply the given masks (by layer name, shaped like each layer's input) inside the block."""
    layers = dropout_layers(model)
    unknown = set(masks) - set(layers)
    if unknown:
        raise KeyError(f"no dropout layer named {sorted(unknown)}; layers: {sorted(layers)}")
    try:
        for name, mask in masks.items():
            layers[name].plugged = mask
        yield
    finally:
        for name in masks:
            layers[name].plugged = None
