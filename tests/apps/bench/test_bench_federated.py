"""Federated suites: `[settings.federated]` is checked in one line, cells also measure utility
with a Flower run (cached: cells that share it run it once), secagg cells attack an aggregate,
a federated campaign runs its attacks in parallel workers and its Flower runs one at a time
in the campaign process, and refuses Ray tasks."""

from __future__ import annotations

import json
import os
import sqlite3
import time
from datetime import datetime
from pathlib import Path

import pytest

from apps.bench import federated
from apps.bench.federated import utility_id
from apps.bench.runner import run_campaign
from apps.bench.store import store_path
from apps.bench.suite import Federated, load_suite
from fedsim.errors import UserInputError

DP = "dp-sgd:noise_multiplier=1,max_grad_norm=1"

# Two Flower runs of MNIST LeNet, 2 clients, 1 round of one local step (≈ 30 s each here), one
# per defense; each defense has 2 cells (images 2, batch 1) sharing it.
TINY = f"""
[settings]
iterations = 5
device = "cpu"

[settings.federated]
clients = 2
rounds = 1
local_epochs = 0
batch_size = 32
partition = "iid"
test_images = 100

[grid]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
defense = ["none", "{DP}"]
batch_size = [1]
images = [2]
seed = [0]
"""


def write_suite(tmp_path: Path, text: str, name: str = "fed") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(text)
    return path


def rows(out: Path) -> dict[str, dict]:
    connection = sqlite3.connect(store_path(out))
    connection.row_factory = sqlite3.Row
    return {row["cell_id"]: dict(row) for row in connection.execute("SELECT * FROM cells")}


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (
            ("clients = 2", "clients = 2\nclient = 3"),
            "unknown key 'settings.federated.client'; valid: clients, rounds, local_epochs",
        ),
        (("clients = 2", "clients = 0"), "invalid settings.federated.clients 0"),
        (("rounds = 1", "rounds = 'many'"), "invalid settings.federated.rounds 'many'"),
        (('partition = "iid"', "partition = 'dirichlet'"), "invalid partition 'dirichlet'"),
        (
            ("[grid]", "[grid.settings.federated]\nlr = -1\n[grid]"),
            "invalid grid.settings.federated.lr -1",
        ),
    ],
)
def test_a_bad_federated_table_is_one_line(
    tmp_path: Path, data_dir: Path, edit: tuple[str, str], expected: str
) -> None:
    path = write_suite(tmp_path, TINY.replace(*edit))

    with pytest.raises(UserInputError) as raised:
        load_suite(path)

    message = str(raised.value)
    assert "\n" not in message and str(path) in message and expected in message


def test_federated_settings_default_merge_and_leave_plain_cell_ids_alone(
    tmp_path: Path, data_dir: Path
) -> None:
    plain = TINY.replace(TINY[TINY.index("[settings.federated]") : TINY.index("[grid]")], "")
    grids = plain.replace("[grid]", "[[grid]]") + "\n[grid.settings.federated]\nrounds = 2\n"
    merged = TINY.replace("[grid]", "[[grid]]") + "\n[grid.settings.federated]\nrounds = 2\n"

    [plain_cell, *_] = load_suite(write_suite(tmp_path, plain, "plain")).cells()
    [grid_cell, *_] = load_suite(write_suite(tmp_path, grids, "grids")).cells()
    [merged_cell, *_] = load_suite(write_suite(tmp_path, merged, "merged")).cells()

    assert plain_cell.federated is None and "federated" not in plain_cell.config_json()
    assert grid_cell.federated == Federated(rounds=2)  # the defaults: 8 clients, dirichlet:0.5
    assert merged_cell.federated == Federated(
        clients=2, rounds=2, local_epochs=0, partition="iid", test_images=100
    )
    assert len({plain_cell.cell_id, grid_cell.cell_id, merged_cell.cell_id}) == 3


def test_secagg_cells_attack_one_aggregate_per_seed_and_need_federated_settings(
    tmp_path: Path, data_dir: Path
) -> None:
    text = TINY.replace(f'"{DP}"', '"secagg"').replace("seed = [0]", "seed = [0, 1]")

    cells = load_suite(write_suite(tmp_path, text)).cells()

    secure = [c for c in cells if c.defense == "secagg"]
    assert [c.seed for c in secure] == [0, 1] and all(c.attacks_aggregate for c in secure)
    assert {c.indices for c in secure} == {()} and {c.images for c in secure} == {2}
    assert len([c for c in cells if c.defense == "none"]) == 4
    without = TINY.replace(TINY[TINY.index("[settings.federated]") : TINY.index("[grid]")], "")
    path = write_suite(tmp_path, without.replace(f'"{DP}"', '"secagg"'), "plain")
    with pytest.raises(UserInputError, match=r"acts on a federated run .* \[settings.federated\]"):
        load_suite(path)


def test_a_federated_suite_refuses_ray_tasks(tmp_path: Path, data_dir: Path) -> None:
    suite = load_suite(write_suite(tmp_path, TINY))

    with pytest.raises(UserInputError, match="Flower runs start Ray .* without --ray-address"):
        run_campaign(suite, tmp_path / "out", ray_address="x")
    assert not (tmp_path / "out").exists()


def test_cli_refuses_ray_for_a_federated_suite_in_one_line(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    path = write_suite(tmp_path, TINY)
    args = ["bench", "--suite", str(path), "--out", str(tmp_path / "o"), "--ray-address", "x"]

    code, _, err = run_cli(args)

    assert code == 2 and err.strip().count("\n") == 0 and "without --ray-address" in err


def test_builtin_privacy_utility_suite_mirrors_the_benchmark_grid(data_dir: Path) -> None:
    suite = load_suite("privacy-utility")

    cells = suite.cells()

    assert "hours on 2 CPU cores" in suite.description
    # 16 attacked defenses × 4 images + 3 dropout rates × 4 images + one secagg aggregate.
    assert len(cells) == 77 and len({utility_id(c) for c in cells}) == 20
    assert {c.federated for c in cells} == {Federated()}
    assert {(c.dataset, c.model, c.batch_size, c.seed, c.iterations) for c in cells} == {
        ("cifar10", "mlp", 1, 0, 1000)
    }
    assert {c.attack for c in cells if c.defense.startswith("dropout:")} == {"dia"}
    assert {c.attack for c in cells if not c.defense.startswith("dropout:")} == {"ig"}
    [secure] = [c for c in cells if c.defense == "secagg"]
    assert secure.images == 8 and secure.indices == ()


def test_cells_record_utility_and_share_one_flower_run_per_defense(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    suite = load_suite(write_suite(tmp_path, TINY))
    out = tmp_path / "out"

    summary = run_campaign(suite, out)

    assert (summary.cells, summary.done, summary.failed) == (4, 4, 0)
    stored = rows(out)
    assert len(list((out / "federated").glob("*.json"))) == 2  # one run per defense
    for row in stored.values():
        metrics = json.loads(row["metrics_json"])
        kept = {p.name for p in (out / row["cell_dir"] / "federated").iterdir()}
        assert 0 <= row["accuracy"] <= 1 and row["accuracy"] == metrics["accuracy"]
        assert metrics["federated"]["accuracy_per_round"] == [row["accuracy"]]
        if row["defense"] == DP:
            assert row["epsilon"] > 0 and metrics["epsilon_one_step"] > 0
            assert row["epsilon"] != metrics["epsilon_one_step"]  # the run's, not one step's
            assert kept == {"config.json", "accuracy.json", "privacy.json"}
        else:
            assert row["epsilon"] is None and metrics["epsilon_one_step"] is None
            assert kept == {"config.json", "accuracy.json"}
    for defense in ("none", DP):
        shared = [json.loads(r["metrics_json"]) for r in stored.values() if r["defense"] == defense]
        assert len({m["federated"]["utility_id"] for m in shared}) == 1

    # A cell that runs again reads the cache: no Flower run starts.
    def no_flower_run(*args: object, **kwargs: object) -> None:
        raise AssertionError("a Flower run started although the utility is cached")

    monkeypatch.setattr(federated, "simulate", no_flower_run)
    again_id = next(k for k, r in stored.items() if r["defense"] == DP)
    connection = sqlite3.connect(store_path(out))
    connection.execute("DELETE FROM cells WHERE cell_id = ?", (again_id,))
    connection.commit()
    connection.close()

    again = run_campaign(suite, out)

    assert (again.ran, again.done) == (1, 4)
    row = rows(out)[again_id]
    assert row["epsilon"] == stored[again_id]["epsilon"]


def test_attacks_run_in_parallel_workers_while_flower_runs_stay_one_at_a_time(
    tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # One image per defense: 2 attack cells, 2 utility runs. The utility runs are timed stand-ins
    # (a real one takes ~30 s): the campaign must call them here, in its own process, one after
    # the other; a worker process would not see this stand-in and would start a real one.
    runs: list[tuple[int, float, float]] = []

    def timed_utility(cell: object, settings: Federated, name: str) -> dict:
        start = time.time()
        time.sleep(0.3)
        runs.append((os.getpid(), start, time.time()))
        files = {"accuracy.json": json.dumps({"accuracy": [0.5]})}
        key = federated.utility_key(cell)
        return {"utility_id": name, "key": key, "accuracy": [0.5], "epsilon": None,
                "wall_s": 0.3, "files": files}  # fmt: skip

    monkeypatch.setattr(federated, "_run_utility", timed_utility)
    # Each attack searches for 4 s, longer than the workers' start-up jitter.
    text = TINY.replace("images = [2]", "images = [1]")
    text = text.replace("iterations = 5", "iterations = 1000000\ntime_budget_s = 4.0")
    suite = load_suite(write_suite(tmp_path, text))

    summary = run_campaign(suite, tmp_path / "out", workers=2)

    assert (summary.done, summary.failed) == (2, 0)
    assert len(runs) == 2 and {pid for pid, _, _ in runs} == {os.getpid()}
    (_, _, first_end), (_, second_start, second_end) = sorted(runs, key=lambda run: run[1])
    assert first_end <= second_start  # one at a time
    stored = list(rows(tmp_path / "out").values())
    pids = [json.loads(row["metrics_json"])["worker_pid"] for row in stored]
    assert len(set(pids)) == 2 and os.getpid() not in pids  # a fresh worker per cell
    spans = [
        (datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["finished_at"]))
        for r in stored
    ]
    assert all(start.timestamp() >= second_end for start, _ in spans)  # after the utility runs
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # side by side
    assert {row["accuracy"] for row in stored} == {0.5}
