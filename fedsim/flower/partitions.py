"""Which train-split rows each client holds: flwr-datasets partitioners on a dataset's labels."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import datasets
import numpy as np
from flwr_datasets.partitioner import (
    DirichletPartitioner,
    IidPartitioner,
    Partitioner,
    ShardPartitioner,
)

from fedsim.data import ImageDataset, load_dataset
from fedsim.errors import UserInputError

PARTITION_FORMS = (
    "iid, dirichlet:ALPHA (ALPHA > 0, e.g. dirichlet:0.5), shards:K (K ≥ 1, e.g. shards:2)"
)
_LABEL, _INDEX = "label", "index"


@dataclass(frozen=True)
class PartitionScheme:
    """How the train split is divided: IID, Dirichlet(alpha) over labels, or K label shards each."""

    kind: Literal["iid", "dirichlet", "shards"]
    alpha: float | None = None
    shards_per_client: int | None = None

    def __str__(self) -> str:
        if self.kind == "dirichlet":
            return f"dirichlet:{self.alpha:g}"
        if self.kind == "shards":
            return f"shards:{self.shards_per_client}"
        return "iid"


def parse_partition(text: str) -> PartitionScheme:
    """Parse ``iid``, ``dirichlet:ALPHA`` or ``shards:K``; raise UserInputError otherwise."""
    kind, _, value = text.strip().lower().partition(":")
    try:
        if kind == "iid" and not value:
            return PartitionScheme("iid")
        if kind == "dirichlet" and float(value) > 0 and np.isfinite(float(value)):
            return PartitionScheme("dirichlet", alpha=float(value))
        if kind == "shards" and int(value) >= 1:
            return PartitionScheme("shards", shards_per_client=int(value))
    except ValueError:
        pass
    raise UserInputError(f"invalid partition {text!r}; valid: {PARTITION_FORMS}")


def partition_indices(
    labels: np.ndarray, scheme: PartitionScheme, num_partitions: int, seed: int
) -> list[np.ndarray]:
    """Row indices of each client's partition, in the order the partitioner lists them.

    IID shuffles the rows with ``seed`` first (flwr-datasets' IidPartitioner cuts contiguous
    blocks); the Dirichlet and shard partitioners take ``seed`` themselves. Shards are runs of
    label-sorted rows, so a shard can straddle two classes: ``shards:K`` gives each client at
    most K labels only when shard boundaries fall on class boundaries.
    """
    if num_partitions < 1:
        raise UserInputError(f"number of clients must be at least 1; got {num_partitions}")
    if num_partitions > len(labels):
        raise UserInputError(
            f"{num_partitions} clients cannot share {len(labels)} images; use at most {len(labels)}"
        )
    table = datasets.Dataset.from_dict({_LABEL: labels, _INDEX: np.arange(len(labels))})
    if scheme.kind == "iid":
        table = table.shuffle(seed=seed)
    partitioner = _partitioner(scheme, num_partitions, seed)
    partitioner.dataset = table
    try:
        return [
            np.asarray(partitioner.load_partition(pid)[_INDEX], dtype=np.int64)
            for pid in range(num_partitions)
        ]
    except ValueError as error:
        raise UserInputError(
            f"cannot split {len(labels)} images into {num_partitions} partitions with "
            f"{scheme}: {' '.join(str(error).split())}"
        ) from error


def _partitioner(scheme: PartitionScheme, num_partitions: int, seed: int) -> Partitioner:
    if scheme.kind == "dirichlet":
        return DirichletPartitioner(
            num_partitions, partition_by=_LABEL, alpha=scheme.alpha, seed=seed
        )
    if scheme.kind == "shards":
        return ShardPartitioner(
            num_partitions,
            partition_by=_LABEL,
            num_shards_per_partition=scheme.shards_per_client,
            seed=seed,
        )
    return IidPartitioner(num_partitions)


@lru_cache(maxsize=2)
def train_split(dataset: str, allow_embedded: bool = False) -> ImageDataset:
    """The dataset's train split, loaded once per process (each client process has its own).

    ``allow_embedded`` lets an offline machine fall back to foolbox's sample images.
    """
    return load_dataset(dataset, "train", allow_embedded=allow_embedded)


@lru_cache(maxsize=4)
def client_partitions(
    dataset: str, partition: str, num_partitions: int, seed: int, allow_embedded: bool = False
) -> tuple[np.ndarray, ...]:
    """Train-split row indices of every client's partition, computed once per process."""
    labels = train_split(dataset, allow_embedded).labels().numpy()
    return tuple(partition_indices(labels, parse_partition(partition), num_partitions, seed))
