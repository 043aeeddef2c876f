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
    per_class: int | None = None,
) -> list[int]:
    """The first ``count`` images of ``split`` (of ``classes``, if given) in a seeded permutation.

    With ``per_class`` the permutation is regrouped into runs of ``per_class`` images of one
    class (classes taken in turn, in the order the permutation first meets them), so a batch of
    a multiple of ``per_class`` images holds repeated labels, ``per_class`` of each. Fewer come
    back when the split (or its ``classes``) holds fewer images.
    """
    from fedsim.data import load_dataset

    data = load_dataset(dataset, split)
    order = np.random.default_rng(seed).permutation(len(data))
    labels = data.labels().numpy()
    if classes is not None:
        order = order[np.isin(labels[order], sorted(classes))]
    if per_class is None:
        return order[:count].tolist()
    return _grouped(order, labels, count, per_class)


def _grouped(order: np.ndarray, labels: np.ndarray, count: int, per_class: int) -> list[int]:
    """``order`` regrouped into runs of ``per_class`` images of one class, classes in turn."""
    buckets: dict[int, list[int]] = {}
    for index in order.tolist():
        buckets.setdefault(int(labels[index]), []).append(index)
    picked: list[int] = []
    taken = dict.fromkeys(buckets, 0)
    while len(picked) < count:
        progressed = False
        for label, members in buckets.items():
            if taken[label] + per_class > len(members) or len(picked) >= count:
                continue
            picked += members[taken[label] : taken[label] + per_class]
            taken[label] += per_class
            progressed = True
        if not progressed:
            break
    return picked[:count]
