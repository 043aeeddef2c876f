"""The ConvNet of Geiping et al., "Inverting Gradients" (NeurIPS 2020), at width 64."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.errors import UserInputError
from fedsim.models.dropout import MaskedDropout

_POOL = 3
# Output channels of the 3x3 conv blocks in each stage; every stage ends in a 3x3 max-pool.
_STAGES = ((64, 128, 128, 256, 256, 256), (256, 256))


class ConvNet64(nn.Module):
    """Eight conv-BN-ReLU blocks, two 3x3 max-pools, dropout, and a linear classifier."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, dropout: float) -> None:
        super().__init__()
        channels, height, width = image_shape
        feature_h, feature_w = height // _POOL // _POOL, width // _POOL // _POOL
        if feature_h < 1 or feature_w < 1:
            raise UserInputError(
                f"convnet64 needs images of at least {_POOL**2}x{_POOL**2}; got {height}x{width}"
            )
        layers: list[nn.Module] = []
        in_channels = channels
        for stage in _STAGES:
            for out_channels in stage:
                layers += [
                    nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1),
                    nn.BatchNorm2d(out_channels),
                    nn.ReLU(inplace=False),
                ]
                in_channels = out_channels
            layers.append(nn.MaxPool2d(_POOL))
        self.features = nn.Sequential(*layers, nn.Flatten())
        # Present even at p=0 so attacks on dropout (DIA) always find the layer.
        self.dropout = MaskedDropout(dropout)
        self.classifier = nn.Linear(in_channels * feature_h * feature_w, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images [N, C, H, W] to logits [N, classes]."""
        return self.classifier(self.dropout(self.features(x)))
