"""The attack's output: reconstructed pixels, inferred labels and how the search went."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors.torch import load_file, safe_open, save_file


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
        tensors = {"images": self.images.contiguous(), "labels": self.labels.contiguous()}
        save_file(tensors, str(path), metadata={"fedleak": json.dumps(meta)})

    @classmethod
    def load(cls, path: Path) -> Reconstruction:
        """Read a reconstruction written by :meth:`save`."""
        with safe_open(str(path), framework="pt") as handle:
            meta = json.loads(handle.metadata()["fedleak"])
        tensors = load_file(str(path))
        meta["restart_distances"] = tuple(meta["restart_distances"])
        meta["history"] = tuple(meta["history"])
        return cls(images=tensors["images"], labels=tensors["labels"], **meta)
