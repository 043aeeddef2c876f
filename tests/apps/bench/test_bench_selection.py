"""``fedleak bench --only KEY=VALUE`` selects cells by their fields; a filter that names nothing
fails in one line (the campaign case: test_bench_run.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from apps.bench.selection import select_cells
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

GRIDS = """
[settings]
iterations = 5

[[grid]]
dataset = "mnist"
model = "lenet"
attack = ["ig-fast", "dlg"]
defense = ["none", "gaussian:std=0.01"]
batch_size = [1]
seed = [0]

[[grid]]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
batch_size = [2]
images = [4]
seed = [0]
[grid.settings]
per_class = 2
"""


@pytest.fixture
def cells(tmp_path: Path, data_dir: Path) -> list:
    suite = tmp_path / "grids.toml"
    suite.write_text(GRIDS)
    return load_suite(suite).cells()


def test_filters_keep_the_cells_matching_all_of_them(cells: list) -> None:
    noisy = select_cells(cells, ["defense=gaussian:std=0.01"])
    assert [(c.attack, c.defense) for c in noisy] == [
        ("ig-fast", "gaussian:std=0.01"),
        ("dlg", "gaussian:std=0.01"),
    ]
    both = select_cells(cells, ["attack=ig-fast", "batch_size=1"])
    assert [(c.defense, c.batch_size) for c in both] == [("none", 1), ("gaussian:std=0.01", 1)]
    assert [c.batch for c in select_cells(cells, ["per_class=2"])] == [0, 1]
    assert len(select_cells(cells, ["per_class=none"])) == 4
    assert select_cells(cells, []) == cells


@pytest.mark.parametrize(
    ("only", "message"),
    [
        (
            "defense=prune:fraction=0.9",
            "no cell left with defense='prune:fraction=0.9'; valid: gaussian:std=0.01, none",
        ),
        ("colour=red", "invalid --only key 'colour'; valid: "),
        ("batch_size", "invalid --only 'batch_size'; valid: KEY=VALUE"),
    ],
)
def test_a_filter_naming_nothing_fails_in_one_line(cells: list, only: str, message: str) -> None:
    with pytest.raises(UserInputError) as error:
        select_cells(cells, ["attack=ig-fast", only])
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_a_trained_victims_cells_are_selected_by_its_fields(data_dir: Path) -> None:
    suite = load_suite("gifd-regime")
    cells = suite.cells()

    trained = select_cells(cells, ["victim_rounds=20", "defense=none"])
    untrained = select_cells(cells, ["victim=none"])

    assert trained and all(c.victim is not None and c.defense == "none" for c in trained)
    assert {c.victim.rounds for c in trained} == {20}
    assert len(untrained) + len(select_cells(cells, ["victim_rounds=20"])) == len(cells)
    with pytest.raises(UserInputError, match="no cell left with victim_rounds='5'; valid: 20"):
        select_cells(cells, ["victim_rounds=5"])


def test_a_captures_cells_are_selected_by_its_flower_run_settings(data_dir: Path) -> None:
    cells = load_suite("batchnorm").cells()

    two_steps = select_cells(cells, ["local_steps=2"])

    assert 0 < len(two_steps) < len(cells)
    assert {c.capture.local_steps for c in two_steps} == {2}
