"""The client's secret batch: read only by scoring and by attacks named as oracles."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from fedsim.storage import load_tensors, save_tensors


@dataclass(frozen=True)
class GroundTruth:
    """The client's secret batch: pixels in [0, 1] (N, C, H, W), labels, and dataset indices."""

    images: torch.Tensor
    labels: torch.Tensor
    indices: tuple[int, ...] = ()

    def save(self, path: Path) -> None:
        """Write this ground truth as one safetensors file, apart from any observation."""
        tensors = {"images": self.images, "labels": self.labels}
        save_tensors(path, tensors, {"indices": list(self.indices)})

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ground truth written by :meth:`save`."""
        tensors, meta = load_tensors(path)
        return cls(tensors["images"], tensors["labels"], tuple(meta["indices"]))
