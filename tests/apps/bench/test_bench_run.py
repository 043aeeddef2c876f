"""Campaigns: cells land in the store with their folders; a rerun resumes; a kill -9 loses only
the cells in flight; a failing cell is recorded and the rest go on."""

from __future__ import annotations

import fcntl
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from apps.bench.runner import Job, run_campaign, run_on_ray
from apps.bench.store import store_path
from apps.bench.suite import load_suite
from fedsim.errors import UserInputError

# 3 cells: mnist lenet, batch 1, 5 steps; `idlg` labels fail on the batch of 2 (iDLG reads one
# label), which makes the third cell fail on purpose.
TINY = """
[settings]
iterations = 5
labels = "idlg"
device = "cpu"

[grid]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
batch_size = [1, 2]
images = [2]
seed = [0]
"""


def rows(out: Path) -> dict[str, dict]:
    connection = sqlite3.connect(store_path(out))
    connection.row_factory = sqlite3.Row
    return {row["cell_id"]: dict(row) for row in connection.execute("SELECT * FROM cells")}


@pytest.fixture
def tiny_suite(tmp_path: Path) -> Path:
    """The TINY suite as a file."""
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    return suite


def bench(run_cli, suite: Path, out: Path, *extra: str) -> dict:
    code, stdout, err = run_cli(
        ["bench", "--suite", str(suite), "--out", str(out), "--json", *extra]
    )
    assert code == 0, err
    return json.loads(stdout.strip().splitlines()[-1])


def test_a_rerun_resumes_only_missing_and_failed_cells(
    tmp_path: Path, data_dir: Path, run_cli, tiny_suite: Path
) -> None:
    suite = tiny_suite
    out = tmp_path / "campaign"

    first = bench(run_cli, suite, out)

    assert first == {"cells": 3, "done": 2, "failed": 1, "store": str(store_path(out))}
    stored = rows(out)
    failed = [r for r in stored.values() if r["status"] == "failed"]
    assert len(failed) == 1 and failed[0]["batch_size"] == 2 and failed[0]["psnr"] is None
    assert failed[0]["error"].startswith("UserInputError: label strategy 'idlg' needs one image")
    assert "Traceback" in (out / failed[0]["cell_dir"] / "error.txt").read_text()
    for row in stored.values():
        config = json.loads(row["config_json"])
        assert row["cell_id"] in row["cell_dir"] and config["batch_size"] == row["batch_size"]
        assert json.loads(row["versions_json"])["versions"]["torch"]
        assert row["suite"] == "tiny" and row["started_at"] <= row["finished_at"]
        if row["status"] == "done":
            assert row["psnr"] > 0 and 0 <= row["label_accuracy"] <= 1 and row["wall_s"] > 0
            assert "history" not in json.loads(row["metrics_json"])
            assert (out / row["cell_dir"] / "metrics.json").is_file()

    # The same suite again runs only the failed cell (it fails again, the same way).
    bench(run_cli, suite, out)
    again = rows(out)
    reran = {k for k in stored if again[k]["finished_at"] != stored[k]["finished_at"]}
    assert reran <= {failed[0]["cell_id"]}
    assert again[failed[0]["cell_id"]]["status"] == "failed"

    # A done cell whose row is deleted, or marked failed, runs again; the others do not.
    done_ids = sorted(k for k, r in stored.items() if r["status"] == "done")
    connection = sqlite3.connect(store_path(out))
    connection.execute("DELETE FROM cells WHERE cell_id = ?", (done_ids[0],))
    connection.execute("UPDATE cells SET status = 'failed' WHERE cell_id = ?", (done_ids[1],))
    connection.execute("UPDATE cells SET started_at = 'kept' WHERE status = 'failed'")
    connection.commit()
    connection.close()
    time.sleep(1)  # finished_at has whole seconds

    third = bench(run_cli, suite, out)

    final = rows(out)
    assert third["done"] == 2 and third["failed"] == 1
    reran = {k for k, r in final.items() if r["started_at"] != "kept"}
    assert reran == {*done_ids, failed[0]["cell_id"]}
    assert final[done_ids[0]]["finished_at"] > stored[done_ids[0]]["finished_at"]


SEVERAL = TINY.replace('labels = "idlg"\n', "").replace("iterations = 5", "iterations = 50")
SEVERAL = SEVERAL.replace("batch_size = [1, 2]\nimages = [2]", "batch_size = [1]\nimages = [6]")


def test_kill_9_mid_campaign_keeps_the_store_sound_and_a_rerun_finishes(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    suite = tmp_path / "several.toml"
    suite.write_text(SEVERAL)
    out = tmp_path / "campaign"
    fedleak = Path(sys.executable).parent / "fedleak"
    command = [str(fedleak), "bench", "--suite", str(suite), "--out", str(out), "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        first = _wait_for_rows(out, process, timeout_s=120)
        workers = psutil.Process(process.pid).children(recursive=True)
        os.kill(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        _, alive = psutil.wait_procs(workers, timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert alive == []  # the workers die with the campaign: none finishes a cell unseen

    connection = sqlite3.connect(store_path(out))
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    kept = {cell_id: row["finished_at"] for cell_id, row in rows(out).items()}
    assert first <= len(kept) < 6

    result = bench(run_cli, suite, out)

    assert result["done"] == 6 and result["failed"] == 0
    final = rows(out)
    assert all(final[k]["finished_at"] == finished for k, finished in kept.items())


def _wait_for_rows(out: Path, process: subprocess.Popen, timeout_s: float) -> int:
    """Poll the store until a row lands; return how many there are."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stderr.read().decode()
        if store_path(out).is_file():
            try:
                count = sqlite3.connect(store_path(out)).execute("SELECT COUNT(*) FROM cells")
                found = count.fetchone()[0]
            except sqlite3.OperationalError:  # the schema is not there yet
                found = 0
            if found:
                return found
        time.sleep(0.05)
    pytest.fail(f"no row in {store_path(out)} after {timeout_s} s")


def test_ray_tasks_send_their_files_back(tmp_path: Path, data_dir: Path, tiny_suite: Path) -> None:
    cells = load_suite(tiny_suite).cells()

    outcomes = list(run_on_ray([Job(cell, None, threads=1) for cell in cells], "local"))

    by_id = {outcome.cell_id: outcome for outcome in outcomes}
    assert set(by_id) == {cell.cell_id for cell in cells}
    assert sorted(o.status for o in outcomes) == ["done", "done", "failed"]
    for outcome in outcomes:
        expected = "metrics.json" if outcome.status == "done" else "error.txt"
        assert expected in outcome.files


def test_a_dp_sgd_cell_records_its_epsilon(tmp_path: Path, data_dir: Path) -> None:
    text = TINY.replace('labels = "idlg"\n', "").replace("batch_size = [1, 2]", "batch_size = [2]")
    suite = tmp_path / "dp.toml"
    suite.write_text(text + "defense = ['dp-sgd:noise_multiplier=1,max_grad_norm=1']\n")

    summary = run_campaign(load_suite(suite), tmp_path / "out")

    [row] = rows(tmp_path / "out").values()
    assert summary.done == 1 and row["defense"] == "dp-sgd:noise_multiplier=1,max_grad_norm=1"
    assert row["epsilon"] > 0 and row["accuracy"] is None  # no training: no model accuracy


def test_one_campaign_at_a_time_per_folder(
    tmp_path: Path, data_dir: Path, tiny_suite: Path
) -> None:
    suite = tiny_suite
    out = tmp_path / "out"
    out.mkdir()

    with (out / ".bench.lock").open("w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        with pytest.raises(UserInputError, match="another `fedleak bench` is running on"):
            run_campaign(load_suite(suite), out)
    assert not store_path(out).exists()


def test_a_selection_lands_in_the_store_and_the_whole_suite_skips_it(
    tmp_path: Path, data_dir: Path, run_cli, tiny_suite: Path
) -> None:
    suite = tiny_suite
    out = tmp_path / "campaign"

    part = bench(run_cli, suite, out, "--only", "batch_size=1")
    first = rows(out)
    whole = bench(run_cli, suite, out)

    assert part == {"cells": 2, "done": 2, "failed": 0, "store": part["store"]}
    assert {json.loads(r["config_json"])["batch_size"] for r in first.values()} == {1}
    assert whole["cells"] == 3 and whole["done"] == 2 and whole["failed"] == 1
    again = rows(out)
    assert all(again[cell_id]["started_at"] == row["started_at"] for cell_id, row in first.items())
    code, _, err = run_cli(["bench", "--suite", str(suite), "--out", str(out), "--only", "seed=7"])
    assert code != 0 and err.strip() == "fedleak: error: no cell left with seed='7'; valid: 0"
