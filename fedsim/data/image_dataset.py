"""A labelled image set that decodes images only when they are asked for."""

from __future__ import annotations

from collections.abc import Sequence

import datasets
import numpy as np
import torch
from PIL import Image
from torch.nn import functional

from fedsim.data.registry import DatasetSpec
from fedsim.errors import DataUnavailableError, UserInputError

_PIL_MODES = {1: "L", 3: "RGB"}


class ImageDataset:
    """Images and labels of one dataset split, backed by a lazily decoding ``datasets.Dataset``."""

    def __init__(self, spec: DatasetSpec, split: str, rows: datasets.Dataset, source: str) -> None:
        self.spec = spec
        self.split = split
        self.source = source
        self._rows = rows
        missing = {spec.image_column, spec.label_column} - set(rows.column_names)
        if missing:
            raise DataUnavailableError(f"{source} lacks column(s) {', '.join(sorted(missing))}")

    def __len__(self) -> int:
        return len(self._rows)

    def __repr__(self) -> str:
        return f"ImageDataset({self.spec.name}/{self.split}, {len(self)} images, {self.source})"

    def first(self, count: int) -> ImageDataset:
        """The first ``count`` images of this split (all of them if it holds fewer)."""
        rows = self._rows.select(range(min(count, len(self))))
        return ImageDataset(self.spec, self.split, rows, self.source)

    def labels(self) -> torch.Tensor:
        """All labels as a LongTensor of shape (N,), read without decoding any image."""
        column = self.spec.label_column
        labels = self._rows.with_format("numpy", columns=[column])[:][column]
        return torch.tensor(labels, dtype=torch.long)

    def images(self, indices: Sequence[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """Decode the rows at ``indices``: float32 pixels (N, C, H, W) in [0, 1] and labels (N,)."""
        rows = [int(index) for index in indices]
        for index in rows:
            if not 0 <= index < len(self):
                raise UserInputError(
                    f"index {index} out of range for {self.spec.name}/{self.split} "
                    f"(valid: 0..{len(self) - 1})"
                )
        if not rows:
            return torch.empty((0, *self.spec.image_shape)), torch.empty(0, dtype=torch.long)
        batch = self._rows[rows]
        pixels = [
            self._to_tensor(image, index)
            for image, index in zip(batch[self.spec.image_column], rows, strict=True)
        ]
        return torch.stack(pixels), torch.tensor(batch[self.spec.label_column], dtype=torch.long)

    def _to_tensor(self, image: Image.Image, index: int) -> torch.Tensor:
        array = np.asarray(image.convert(_PIL_MODES[self.spec.channels]), dtype=np.uint8)
        pixels = torch.from_numpy(array.copy()).reshape(array.shape[0], array.shape[1], -1)
        pixels = pixels.permute(2, 0, 1).float() / 255.0
        if self.spec.view_of is not None and pixels.shape[1:] != self.spec.image_shape[1:]:
            pixels = resize(pixels, self.spec.image_shape[1:])
        if pixels.shape != self.spec.image_shape:
            raise UserInputError(
                f"image {index} of {self.source} has shape {tuple(pixels.shape)}; "
                f"{self.spec.name} needs {self.spec.image_shape}"
            )
        return pixels


def resize(pixels: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Resize one (C, H, W) image in [0, 1] to ``size``: bilinear, antialiased, kept in [0, 1]."""
    resized = functional.interpolate(
        pixels.unsqueeze(0), size=size, mode="bilinear", antialias=True, align_corners=False
    )
    return resized.squeeze(0).clamp(0, 1)
