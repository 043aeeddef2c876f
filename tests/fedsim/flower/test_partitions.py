"""Client partitions: the forms --partition accepts, sizes, seeding and label skew."""

from __future__ import annotations

import numpy as np
import pytest

from fedsim.errors import UserInputError
from fedsim.flower.partitions import (
    PartitionScheme,
    client_partitions,
    parse_partition,
    partition_indices,
    train_split,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("iid", PartitionScheme("iid")),
        ("dirichlet:0.5", PartitionScheme("dirichlet", alpha=0.5)),
        ("Dirichlet:2", PartitionScheme("dirichlet", alpha=2.0)),
        ("shards:2", PartitionScheme("shards", shards_per_client=2)),
    ],
)
def test_parse_partition_accepts_the_documented_forms(text: str, expected) -> None:
    assert parse_partition(text) == expected
    assert parse_partition(str(expected)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "zipf",
        "iid:3",
        "dirichlet",
        "dirichlet:0",
        "dirichlet:-1",
        "dirichlet:nan",
        "shards",
        "shards:0",
        "shards:1.5",
        "shards:two",
    ],
)
def test_parse_partition_rejects_bad_forms_naming_the_valid_ones(text: str) -> None:
    with pytest.raises(UserInputError, match=r"invalid partition .*valid: iid, dirichlet:ALPHA"):
        parse_partition(text)


def test_iid_partitions_are_disjoint_equal_and_seeded() -> None:
    labels = np.arange(1_000) % 10

    parts = partition_indices(labels, PartitionScheme("iid"), 7, seed=3)

    assert [len(p) for p in parts] == [143] * 6 + [142]
    assert sorted(np.concatenate(parts).tolist()) == list(range(1_000))
    again = partition_indices(labels, PartitionScheme("iid"), 7, seed=3)
    other = partition_indices(labels, PartitionScheme("iid"), 7, seed=4)
    assert all(np.array_equal(a, b) for a, b in zip(parts, again, strict=True))
    assert not np.array_equal(parts[0], other[0])


def test_more_clients_than_images_fails_with_one_line() -> None:
    with pytest.raises(UserInputError, match="5 clients cannot share 4 images"):
        partition_indices(np.zeros(4, dtype=int), PartitionScheme("iid"), 5, seed=0)


def _dominant_label_share(labels: np.ndarray, parts: list[np.ndarray]) -> float:
    """Mean over clients of the fraction of its images that carry its most common label."""
    return float(np.mean([np.bincount(labels[p]).max() / len(p) for p in parts]))


def test_dirichlet_small_alpha_is_label_skewed(data_dir) -> None:
    labels = train_split("mnist").labels().numpy()

    iid = client_partitions("mnist", "iid", 10, 0)
    skewed = client_partitions("mnist", "dirichlet:0.1", 10, 0)

    assert sum(len(p) for p in skewed) == len(labels)
    assert sorted(np.concatenate(skewed).tolist()) == list(range(len(labels)))
    assert _dominant_label_share(labels, list(iid)) < 0.15  # about 1/10 per label
    assert _dominant_label_share(labels, list(skewed)) > 0.5


def test_shards_give_each_client_its_k_labels(data_dir) -> None:
    # CIFAR-10 has 5,000 images per class; 10 clients × 2 shards of 2,500 align with classes.
    labels = train_split("cifar10").labels().numpy()

    parts = client_partitions("cifar10", "shards:2", 10, 0)

    assert [len(p) for p in parts] == [5_000] * 10
    assert max(len(np.unique(labels[p])) for p in parts) <= 2


def test_shards_straddling_classes_stay_concentrated(data_dir) -> None:
    # MNIST's classes differ in size, so some shards straddle two classes: ≤ 2k labels, and
    # the k largest labels of a client still hold most of its images.
    labels = train_split("mnist").labels().numpy()

    parts = client_partitions("mnist", "shards:2", 8, 0)

    assert [len(p) for p in parts] == [7_500] * 8
    for rows in parts:
        counts = np.sort(np.bincount(labels[rows]))[::-1]
        assert np.count_nonzero(counts) <= 4
        assert counts[:2].sum() / len(rows) > 0.6
