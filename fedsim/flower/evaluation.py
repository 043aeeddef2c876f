"""Global test accuracy: the aggregated model on the first images of the test split."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.data import DatasetSpec, load_dataset, normalize


class GlobalEvaluator:
    """Accuracy of a model state on the first ``num_images`` test images (decoded once)."""

    def __init__(
        self, model: nn.Module, dataset: DatasetSpec, num_images: int, allow_embedded: bool = False
    ) -> None:
        test = load_dataset(dataset.name, "test", allow_embedded=allow_embedded)
        images, self.labels = test.images(range(min(num_images, len(test))))
        self.inputs = normalize(images, dataset)
        self.model = model

    @torch.no_grad()
    def accuracy(self, state: dict[str, torch.Tensor], batch_size: int = 250) -> float:
        """Fraction of the test images the model with ``state`` classifies correctly, in [0, 1]."""
        self.model.load_state_dict(state)
        self.model.eval()
        correct = sum(
            int((self.model(inputs).argmax(dim=1) == labels).sum())
            for inputs, labels in zip(
                self.inputs.split(batch_size), self.labels.split(batch_size), strict=True
            )
        )
        return correct / len(self.labels)
