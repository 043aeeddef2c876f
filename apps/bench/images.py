"""Held-out image draws: the same seed names the same images on every machine."""

from __future__ import annotations

from collections.abc import Collection

import numpy as np


def image_indices(
    dataset: str,
    count: int,
    seed: int,
    classes: Collection[int] | None = None,
    split: str = "test",
) -> list[int]:
    """The first ``count`` images of ``split`` (of ``classes``, if given) in a seeded permutation.

    Fewer come back when the split (or its ``classes``) holds fewer images.
    """
    from fedsim.data import load_dataset

    data = load_dataset(dataset, split)
    order = np.random.default_rng(seed).permutation(len(data))
    if classes is not None:
        labels = data.labels().numpy()
        order = order[np.isin(labels[order], sorted(classes))]
    return order[:count].tolist()
