"""A bias-free MLP: three GELU hidden layers of width 512, each followed by dropout."""

from __future__ import annotations

import math

import torch
from torch import nn

from fedsim.models.dropout import MaskedDropout

_HIDDEN = 512
_DEPTH = 3


class MLP(nn.Module):
    """Flatten, three Linear-GELU-Dropout layers without bias, and a bias-free output layer."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, dropout: float) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        in_features = math.prod(image_shape)
        for _ in range(_DEPTH):
            linear = nn.Linear(in_features, _HIDDEN, bias=False)
            layers += [linear, nn.GELU(), MaskedDropout(dropout)]
            in_features = _HIDDEN
        layers.append(nn.Linear(in_features, num_classes, bias=False))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images [N, C, H, W] to logits [N, classes]."""
        return self.layers(x)
