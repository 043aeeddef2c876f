"""Reading runs: discovery under a folder, typed records, read-only bench stores, clear errors."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from viewer_runs import write_attack_run, write_bench_store

from apps.viewer.bench_store import read_cells
from apps.viewer.discovery import discover_runs, load_run, read_attack_run
from apps.viewer.paths import UnsafePathError
from apps.viewer.records import (
    AttackRun,
    BenchRun,
    Capture,
    RunLocation,
    RunReadError,
    SimulationRun,
)


def test_discovery_finds_each_kind_and_the_attacks_under_a_simulation(runs_root: Path) -> None:
    found = discover_runs(runs_root)

    assert found == (
        RunLocation("attack", "attack"),
        RunLocation("bench", "bench"),
        RunLocation("simulation", "sim"),
        RunLocation("attack", "sim/attacks/round-001-client-001-ig"),
    )


def test_discovery_does_not_follow_symlinked_folders(runs_root: Path, tmp_path: Path) -> None:
    write_attack_run(tmp_path / "elsewhere" / "attack")
    (runs_root / "linked").symlink_to(tmp_path / "elsewhere")

    assert "linked/attack" not in {location.path for location in discover_runs(runs_root)}


def test_a_run_folder_given_as_the_root_is_found_as_dot(tmp_path: Path) -> None:
    write_attack_run(tmp_path / "attack")

    assert discover_runs(tmp_path / "attack") == (RunLocation("attack", "."),)
    assert isinstance(load_run(tmp_path / "attack", "."), AttackRun)


def test_an_attack_run_reads_into_its_record(runs_root: Path) -> None:
    run = load_run(runs_root, "attack")

    assert isinstance(run, AttackRun)
    assert (run.attack, run.psnr, run.ssim, run.st_lpips) == ("ig", 21.5, 0.61, 0.125)
    assert run.lpips is None and run.lpips_unavailable == "AlexNet weights not cached"
    assert run.grid == "attack/grid.png" and run.iterations == 4
    assert run.per_image[1] == {
        "image": 1,
        "true_label": 3,
        "psnr": 23.0,
        "ssim": 0.67,
        "st_lpips": 0.15,
        "reconstruction": 0,
    }
    assert [row["gradient_distance"] for row in run.history] == [0.2, 0.1, 0.05, 0.0125]
    assert [row["iteration"] for row in run.history] == [1, 2, 3, 4]


def test_history_and_per_image_given_as_records_are_kept(tmp_path: Path) -> None:
    folder = write_attack_run(tmp_path / "attack")
    metrics = json.loads((folder / "metrics.json").read_text())
    metrics["history"] = [{"gradient_distance": 0.5, "psnr": 9.0}, {"gradient_distance": 0.25}]
    metrics["per_image"] = [{"psnr": 20.0, "ssim": 0.5}, {"psnr": 23.0, "ssim": 0.7}]
    (folder / "metrics.json").write_text(json.dumps(metrics))

    run = read_attack_run(tmp_path, "attack")

    assert run.history == (
        {"iteration": 1, "gradient_distance": 0.5, "psnr": 9.0},
        {"iteration": 2, "gradient_distance": 0.25},
    )
    assert run.per_image[1] == {"image": 1, "psnr": 23.0, "ssim": 0.7}


def test_a_simulation_reads_accuracy_partitions_privacy_captures_and_attacks(
    runs_root: Path,
) -> None:
    run = load_run(runs_root, "sim")

    assert isinstance(run, SimulationRun)
    assert (run.dataset, run.model, run.clients, run.rounds) == ("mnist", "lenet", 2, 2)
    assert run.accuracy_rounds == (1, 2) and run.accuracy == (0.42, 0.64)
    assert run.initial_accuracy == 0.1 and run.partition == "dirichlet:0.5"
    assert [p.label_counts for p in run.partitions] == [(2, 1, 0), (0, 1, 3)]
    assert run.privacy is not None and run.privacy.epsilon == (1.5, 2.25)
    assert run.captures[0] == Capture(1, 0) and len(run.captures) == 4
    assert [(a.round, a.client, a.psnr) for a in run.attacks] == [(1, 1, 30.25)]


def test_a_bench_store_reads_every_cell(runs_root: Path) -> None:
    run = load_run(runs_root, "bench")

    assert isinstance(run, BenchRun) and run.store == "bench/results.sqlite"
    by_id = {cell.cell_id: cell for cell in run.cells}
    assert by_id["cifar10-lenet-ig-none-b1-s0"].psnr == 24.75
    assert by_id["cifar10-lenet-ig-gaussian-b1-s0"].defense == "gaussian:std=0.01"
    assert by_id["cifar10-lenet-dia-none-b1-s0"].status == "failed"
    assert by_id["cifar10-lenet-dia-none-b1-s0"].psnr is None


def test_the_store_is_opened_read_only(runs_root: Path) -> None:
    store = runs_root / "bench" / "results.sqlite"
    before = store.read_bytes()
    store.chmod(0o444)

    read_cells(runs_root, "bench")

    assert store.read_bytes() == before
    assert sorted(p.name for p in store.parent.iterdir()) == ["cells", "results.sqlite"]


def test_a_corrupted_store_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "results.sqlite").write_bytes(b"this is not sqlite" * 100)

    with pytest.raises(RunReadError, match="bench/results.sqlite is not a readable bench store"):
        read_cells(tmp_path, "bench")


def test_a_store_without_cells_and_a_missing_store_are_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    sqlite3.connect(tmp_path / "bench" / "results.sqlite").close()

    with pytest.raises(RunReadError, match="has no 'cells' table"):
        read_cells(tmp_path, "bench")
    with pytest.raises(RunReadError, match="no bench store at gone/results.sqlite"):
        read_cells(tmp_path, "gone")


def test_a_store_with_extra_and_missing_columns_still_reads(tmp_path: Path) -> None:
    (tmp_path / "bench").mkdir()
    with sqlite3.connect(tmp_path / "bench" / "results.sqlite") as db:
        db.execute("CREATE TABLE cells (cell_id TEXT, status TEXT, psnr REAL, novelty TEXT)")
        db.execute("INSERT INTO cells VALUES ('a', 'done', 20.5, 'x')")
    db.close()

    (cell,) = read_cells(tmp_path, "bench")

    assert (cell.cell_id, cell.psnr, cell.defense) == ("a", 20.5, None)


def test_invalid_metrics_json_names_the_file(tmp_path: Path) -> None:
    folder = write_attack_run(tmp_path / "broken")
    (folder / "metrics.json").write_text("{ not json")

    with pytest.raises(RunReadError, match=r"broken/metrics.json is not valid JSON \(line 1"):
        load_run(tmp_path, "broken")


def test_a_metrics_file_linked_from_outside_is_never_read(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "attack").mkdir(parents=True)
    write_attack_run(tmp_path / "secret")
    (root / "attack" / "metrics.json").symlink_to(tmp_path / "secret" / "metrics.json")

    with pytest.raises(UnsafePathError, match="outside the folder"):
        load_run(root, "attack")


def test_a_folder_that_is_no_run_is_a_clear_error(runs_root: Path) -> None:
    (runs_root / "empty").mkdir()

    with pytest.raises(RunReadError, match="empty is not a run folder"):
        load_run(runs_root, "empty")


def test_bench_cells_in_their_own_folders_are_attack_runs(tmp_path: Path) -> None:
    write_bench_store(tmp_path / "bench")

    run = load_run(tmp_path, "bench/cells/none")

    assert isinstance(run, AttackRun) and run.psnr == 24.75
