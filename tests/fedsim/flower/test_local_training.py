"""A client's batches: seeded, without replacement, a new shuffle once a partition is spent."""

from __future__ import annotations

import numpy as np

from fedsim.flower.local_training import step_indices


def _steps(partition: np.ndarray, **overrides: int) -> list[list[int]]:
    kwargs = dict(local_steps=3, batch_size=4, seed=0, server_round=1, partition_id=2)
    return step_indices(partition, **(kwargs | overrides))


def test_batches_come_from_the_partition_without_repeats() -> None:
    partition = np.arange(100, 150)

    steps = _steps(partition)

    flat = [i for batch in steps for i in batch]
    assert [len(batch) for batch in steps] == [4, 4, 4]
    assert len(set(flat)) == 12 and set(flat) <= set(partition.tolist())


def test_batches_depend_on_seed_round_and_partition_only() -> None:
    partition = np.arange(50)

    assert _steps(partition) == _steps(partition)
    assert _steps(partition) != _steps(partition, seed=1)
    assert _steps(partition) != _steps(partition, server_round=2)
    assert _steps(partition) != _steps(partition, partition_id=3)


def test_steps_beyond_the_partition_start_a_new_shuffle() -> None:
    steps = _steps(np.arange(6), local_steps=2, batch_size=4)

    first_epoch = steps[0] + steps[1][:2]
    assert sorted(first_epoch) == list(range(6))


def test_epochs_pass_over_the_whole_partition_in_full_batches() -> None:
    partition = np.arange(100, 111)  # 11 images: two full batches of 4 per pass, 3 dropped

    steps = _steps(partition, local_steps=1, local_epochs=3)

    assert [len(batch) for batch in steps] == [4] * 6
    for epoch in range(3):
        seen = steps[2 * epoch] + steps[2 * epoch + 1]
        assert len(set(seen)) == 8 and set(seen) <= set(partition.tolist())
    assert steps[:2] != steps[2:4]  # each pass is a fresh shuffle
