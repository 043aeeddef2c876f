"""The sigmoid LeNet of Zhu et al., "Deep Leakage from Gradients" (NeurIPS 2019)."""

from __future__ import annotations

import torch
from torch import nn

_WIDTH = 12
_INIT_RANGE = 0.5


def _conv_out(size: int, stride: int) -> int:
    """Side length after a 5x5 convolution with padding 2."""
    return (size + 2 * 2 - 5) // stride + 1


class LeNet(nn.Module):
    """Three 5x5 sigmoid convolutions and one linear layer; DLG's reference victim model."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int) -> None:
        super().__init__()
        channels, height, width = image_shape
        self.features = nn.Sequential(
            nn.Conv2d(channels, _WIDTH, kernel_size=5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(_WIDTH, _WIDTH, kernel_size=5, padding=2, stride=2),
            nn.Sigmoid(),
            nn.Conv2d(_WIDTH, _WIDTH, kernel_size=5, padding=2, stride=1),
            nn.Sigmoid(),
            nn.Flatten(),
        )
        feature_h = _conv_out(_conv_out(height, 2), 2)
        feature_w = _conv_out(_conv_out(width, 2), 2)
        self.classifier = nn.Linear(_WIDTH * feature_h * feature_w, num_classes)
        # DLG converges from this wide uniform init; PyTorch's default init makes it fail often.
        for parameter in self.parameters():
            nn.init.uniform_(parameter, -_INIT_RANGE, _INIT_RANGE)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images [N, C, H, W] to logits [N, classes]."""
        return self.classifier(self.features(x))
