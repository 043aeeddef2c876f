"""The attack's output: reconstructed pixels, inferred labels and how the search went."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from fedsim.storage import load_tensors, save_tensors


@dataclass(frozen=True)
class Reconstruction:
    """Reconstructed batch as pixels in [0, 1] (N, C, H, W) with the labels the attack used."""

    images: torch.Tensor
    labels: torch.Tensor
    gradient_distance: float
    restart_distances: tuple[float, ...]
    history: tuple[float, ...]
    iterations: int
    wall_s: float
    config: dict = field(default_factory=dict)

    def save(self, path: Path) -> None:
        """Write the images and labels as safetensors, the rest as JSON metadata."""
        meta = {
            "gradient_distance": self.gradient_distance,
            "restart_distances": list(self.restart_distances),
            "history": list(self.history),
            "iterations": self.iterations,
            "wall_s": self.wall_s,
            "config": self.config,
        }
        save_tensors(path, {"images": self.images, "labels": self.labels}, meta)

    @classmethod
    def load(cls, path: Path) -> Reconstruction:
        """Read a reconstruction written by :meth:`save`."""
        tensors, meta = load_tensors(path)
        meta["restart_distances"] = tuple(meta["restart_distances"])
        meta["history"] = tuple(meta["history"])
        return cls(images=tensors["images"], labels=tensors["labels"], **meta)
