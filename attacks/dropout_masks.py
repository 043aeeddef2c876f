"""The dropout-mask part of the search space (Scheliga et al., "Dropout is NOT All You Need to
Prevent Gradient Leakage", AAAI 2023).

A client that trains with dropout computes its update through masks the server never sees. The
Dropout Inversion Attack searches one continuous mask per dropout layer jointly with the
images; its oracle baseline (WIIG) is handed the client's true masks instead.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn

from fedsim.errors import UserInputError
from fedsim.models.dropout import dropout_layers, recording_masks

Masks = dict[str, torch.Tensor]
"""Per dropout layer name, a mask shaped like the layer's input for every image (batch first)."""


def mask_shapes(model: nn.Module, image_shape: tuple[int, ...], images: int) -> dict[str, tuple]:
    """Shapes of the masks each active dropout layer draws for ``images`` inputs of one shape."""
    layers = dropout_layers(model)
    was_training = {name: layer.training for name, layer in layers.items()}
    for layer in layers.values():
        layer.train(True)
    try:
        with torch.no_grad(), recording_masks(model) as drawn:
            model(torch.zeros(images, *image_shape))
    finally:
        for name, layer in layers.items():
            layer.train(was_training[name])
    return {name: tuple(mask.shape) for name, mask in drawn.items()}


def initial_masks(
    shapes: Mapping[str, tuple], rate: float, restarts: int, generator: torch.Generator
) -> Masks:
    """Bernoulli(1 − rate) draws per restart: shape (restarts, *layer shape), as floats."""
    return {
        name: torch.bernoulli(torch.full((restarts, *shape), 1 - rate), generator=generator)
        for name, shape in shapes.items()
    }


def oracle_masks(
    true_masks: Mapping[str, torch.Tensor] | None, shapes: Mapping[str, tuple], restarts: int
) -> Masks:
    """The client's true masks, checked against the model's layers, repeated per restart."""
    if not true_masks:
        raise UserInputError(
            "the oracle attack (wiig) needs the client's true dropout masks, which only its "
            "ground truth holds; none were given (attack a run or dataset images with dropout > 0)"
        )
    if set(true_masks) != set(shapes) or any(
        tuple(true_masks[n].shape) != shapes[n] for n in shapes
    ):
        given = {n: tuple(m.shape) for n, m in true_masks.items()}
        raise UserInputError(
            f"the given dropout masks {given} do not fit the model's dropout layers {dict(shapes)}"
        )
    return {n: true_masks[n].float().expand(restarts, *shapes[n]).clone() for n in shapes}


def mask_rate_penalty(masks: Mapping[str, torch.Tensor], rate: float) -> torch.Tensor:
    """Sum over layers of |(1 − mean mask) − rate|: pulls each layer's drop rate to ``rate``."""
    return sum(((1 - mask.mean()) - rate).abs() for mask in masks.values())


@torch.no_grad()
def clamp_masks_(masks: Mapping[str, torch.Tensor]) -> None:
    """Project every mask into [0, 1], in place."""
    for mask in masks.values():
        mask.clamp_(0, 1)
