"""Starting points of the dummy images, in the model's normalised input space."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

Initializer = Callable[[Sequence[int], torch.Generator], torch.Tensor]


def _randn(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.randn(tuple(shape), generator=generator)


def _rand(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.rand(tuple(shape), generator=generator) * 2 - 1


def _zeros(shape: Sequence[int], generator: torch.Generator) -> torch.Tensor:
    return torch.zeros(tuple(shape))


INITIALIZERS: dict[str, Initializer] = {
    "randn": _randn,  # standard normal: the dataset's mean image plus unit-variance noise
    "rand": _rand,  # uniform in [-1, 1]
    "zeros": _zeros,  # the dataset's mean colour
}
