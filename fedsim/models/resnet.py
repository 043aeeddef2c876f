"""ResNet-18 for small images: 3x3 stride-1 stem, no max-pool (He et al. 2016, CIFAR variant)."""

from __future__ import annotations

import torch
from torch import nn

_STAGES = ((1, 1), (2, 2), (4, 2), (8, 2))  # (width multiple, stride of the first block)
_BLOCKS_PER_STAGE = 2


def _conv3x3(in_channels: int, out_channels: int, stride: int) -> nn.Conv2d:
    """3x3 convolution with padding 1 and no bias (a BatchNorm follows)."""
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)


class BasicBlock(nn.Module):
    """Two 3x3 conv-BN layers with a residual connection; out-of-place for double backward."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = _conv3x3(in_channels, out_channels, stride)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = _conv3x3(out_channels, out_channels, 1)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=False)
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the block to feature maps [N, C, H, W]."""
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class ResNet18(nn.Module):
    """ResNet-18 with BasicBlocks [2, 2, 2, 2] of widths ``width`` to 8 × ``width`` (64 to 512)."""

    def __init__(
        self, image_shape: tuple[int, int, int], num_classes: int, width: int = 64
    ) -> None:
        super().__init__()
        channels = image_shape[0]
        self.stem = nn.Sequential(
            _conv3x3(channels, width, 1), nn.BatchNorm2d(width), nn.ReLU(inplace=False)
        )
        blocks: list[nn.Module] = []
        in_channels = width
        for multiple, stride in _STAGES:
            width_here = width * multiple
            for index in range(_BLOCKS_PER_STAGE):
                blocks.append(BasicBlock(in_channels, width_here, stride if index == 0 else 1))
                in_channels = width_here
        self.blocks = nn.Sequential(*blocks)
        self.pool = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.classifier = nn.Linear(in_channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images [N, C, H, W] to logits [N, classes]."""
        return self.classifier(self.pool(self.blocks(self.stem(x))))
