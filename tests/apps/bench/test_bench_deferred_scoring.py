"""`fedleak bench --no-score` keeps each cell's truth and reconstruction; `fedleak bench score`
or a rerun that scores gives the metrics scoring at once gives. `--device` is recorded."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import torch

from apps.bench.runner import run_campaign
from apps.bench.store import store_path
from apps.bench.suite import load_suite

TINY = """
[settings]
iterations = 5

[grid]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
images = [2]
"""
SCORES = ("psnr", "ssim", "st_lpips", "label_accuracy")


def rows(out: Path) -> dict[str, dict]:
    connection = sqlite3.connect(store_path(out))
    connection.row_factory = sqlite3.Row
    found = {row["cell_id"]: dict(row) for row in connection.execute("SELECT * FROM cells")}
    connection.close()
    return found


def bench(run_cli, *args: str) -> dict:
    code, stdout, err = run_cli(["bench", *args, "--json"])
    assert code == 0, err
    return json.loads(stdout.strip().splitlines()[-1])


def comparable(row: dict) -> dict:
    """What scoring decides: the store's score columns and the metrics' per-image values."""
    metrics = json.loads(row["metrics_json"])
    return {
        **{k: row[k] for k in SCORES},
        "per_image": metrics["per_image"],
        "random_psnr": metrics["random_psnr"],
        "labels": metrics["recovered_labels"],
    }


def test_no_score_then_score_later_matches_scoring_at_once(
    tmp_path: Path, data_dir: Path, run_cli
) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY)
    now, later, rerun = tmp_path / "now", tmp_path / "later", tmp_path / "rerun"

    bench(run_cli, "--suite", str(suite), "--out", str(now), "--device", "cpu")
    for out in (later, rerun):
        bench(run_cli, "--suite", str(suite), "--out", str(out), "--device", "cpu", "--no-score")

    kept = rows(later)
    assert len(kept) == 2
    for row in kept.values():
        folder = later / row["cell_dir"]
        assert row["status"] == "done" and row["psnr"] is None and row["ssim"] is None
        assert json.loads(row["metrics_json"])["scored"] is False
        assert (folder / "reconstruction.safetensors").is_file()
        assert (folder / "ground_truth.safetensors").is_file()
        assert not (folder / "metrics.json").exists()
    # A --no-score rerun leaves them be; the report counts them as waiting.
    again = bench(
        run_cli, "--suite", str(suite), "--out", str(later), "--device", "cpu", "--no-score"
    )
    assert again["done"] == 2 and rows(later) == kept
    code, report, _ = run_cli(["bench", "report", str(later), "--no-plots"])
    assert code == 0 and "2 done cells not scored yet" in report

    assert bench(run_cli, "score", str(later)) == {"scored": 2, "store": str(store_path(later))}
    resumed = bench(run_cli, "--suite", str(suite), "--out", str(rerun), "--device", "cpu")

    at_once = rows(now)
    assert resumed["done"] == 2
    for out in (later, rerun):
        scored = rows(out)
        assert set(scored) == set(at_once)
        for cell_id, row in scored.items():
            assert comparable(row) == comparable(at_once[cell_id])
            assert row["psnr"] > 0 and "scored" not in json.loads(row["metrics_json"])
            assert (out / row["cell_dir"] / "metrics.json").is_file()
            assert not (out / row["cell_dir"] / "unscored.json").exists()
    # A second `bench score` finds nothing left to score.
    assert bench(run_cli, "score", str(later))["scored"] == 0


def test_device_is_part_of_each_cell_and_recorded(tmp_path: Path, data_dir: Path, run_cli) -> None:
    suite = tmp_path / "tiny.toml"
    suite.write_text(TINY.replace("images = [2]", "images = [1]"))
    out = tmp_path / "out"

    bench(run_cli, "--suite", str(suite), "--out", str(out), "--device", "cpu")
    bench(run_cli, "--suite", str(suite), "--out", str(out), "--device", "auto")

    used = {
        json.loads(row["config_json"])["device"]: json.loads(row["metrics_json"])["device"]
        for row in rows(out).values()
    }
    # Another device is another cell; each row records the device its attack ran on.
    assert used == {"cpu": "cpu", "auto": "cuda" if torch.cuda.is_available() else "cpu"}


def test_a_rerun_scores_only_its_own_suites_cells(tmp_path: Path, data_dir: Path, run_cli) -> None:
    first, second = tmp_path / "first.toml", tmp_path / "second.toml"
    first.write_text(TINY.replace("images = [2]", "images = [1]"))
    one_image = TINY.replace("images = [2]", "images = [1]")
    second.write_text(one_image.replace("iterations = 5", 'iterations = 6\ndevice = "cpu"'))
    out = tmp_path / "shared"

    bench(run_cli, "--suite", str(first), "--out", str(out), "--device", "cpu", "--no-score")
    summary = run_campaign(load_suite(second), out)

    assert (summary.cells, summary.skipped, summary.ran, summary.done) == (1, 0, 1, 1)
    by_suite = {row["suite"]: json.loads(row["metrics_json"]) for row in rows(out).values()}
    assert by_suite["first"]["scored"] is False and "scored" not in by_suite["second"]
