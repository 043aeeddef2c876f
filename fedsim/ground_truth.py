"""The client's secret batch: read only by scoring and by attacks named as oracles."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from fedsim.storage import load_tensors, save_tensors


@dataclass(frozen=True)
class GroundTruth:
    """The client's secret batch: pixels in [0, 1] (N, C, H, W), labels, and dataset indices.

    ``dropout_masks`` holds the masks the client's dropout layers drew, by layer name, batch
    first in the images' order (empty without dropout).
    """

    images: torch.Tensor
    labels: torch.Tensor
    indices: tuple[int, ...] = ()
    dropout_masks: dict[str, torch.Tensor] = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write this ground truth as one safetensors file, apart from any observation."""
        tensors = {"images": self.images, "labels": self.labels}
        tensors |= {f"{_MASK}{name}": mask for name, mask in self.dropout_masks.items()}
        save_tensors(path, tensors, {"indices": list(self.indices)})

    @classmethod
    def load(cls, path: Path) -> GroundTruth:
        """Read a ground truth written by :meth:`save`."""
        tensors, meta = load_tensors(path)
        masks = {k.removeprefix(_MASK): v for k, v in tensors.items() if k.startswith(_MASK)}
        return cls(tensors["images"], tensors["labels"], tuple(meta["indices"]), masks)


_MASK = "dropout_mask/"
