"""Held-out draws: seeded, and with ``per_class`` regrouped into repeated labels."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from apps.bench.images import image_indices
from apps.bench.suite import load_suite
from fedsim.data import load_dataset


def test_per_class_draws_batches_of_repeated_labels(data_dir) -> None:
    labels = load_dataset("cifar10", "test").labels()
    plain = image_indices("cifar10", 16, seed=0)

    grouped = image_indices("cifar10", 16, seed=0, per_class=2)

    assert image_indices("cifar10", 16, seed=0, per_class=2) == grouped  # seeded
    assert len(set(grouped)) == 16
    for start in (0, 8):
        counts = Counter(labels[grouped[start : start + 8]].tolist())
        assert sorted(counts.values()) == [2, 2, 2, 2]  # four classes, two images each
    assert grouped[0] == plain[0]  # the permutation's first image leads its class's run
    assert Counter(labels[plain[:8]].tolist()).most_common(1)[0][1] <= 2  # plain is not grouped


def test_a_suite_with_per_class_draws_its_cells_from_the_grouped_draw(
    tmp_path: Path, data_dir
) -> None:
    path = tmp_path / "repeated.toml"
    path.write_text(
        '[settings]\niterations = 5\nper_class = 2\n\n[grid]\ndataset = "cifar10"\n'
        'model = "lenet"\nattack = "ig-fast"\nbatch_size = 4\nimages = 8\n\n'
        '[report]\nrows = ["per_class", "batch_size"]\n'
    )

    cells = load_suite(path).cells()

    assert [cell.indices for cell in cells] == [
        tuple(image_indices("cifar10", 8, seed=0, per_class=2)[start : start + 4])
        for start in (0, 4)
    ]
    assert all(cell.per_class == 2 and '"per_class":2' in cell.config_json() for cell in cells)
