"""``fedleak dta render-dataset``: triplets on disk, resumable, the same with two workers, and
one-line errors for bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from attacks.camouflage.dataset import load_triplets, view_path

SMALL = ["--colours", "2", "--size", "16", "--spp", "2", "--seed", "5"]


def test_render_dataset_writes_triplets_and_resumes(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "triplets"
    code, stdout, _ = run_cli(
        ["dta", "render-dataset", "--out", str(out), "--views", "3", *SMALL, "--json"]
    )

    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0
    assert summary["rendered_views"] == 3 and summary["renders"] == 9
    data = load_triplets(out)
    assert data.x_ref.shape == (3, 3, 16, 16) and data.renders.shape == (3, 2, 3, 16, 16)
    assert data.masks.shape == (3, 16, 16) and data.colours.shape == (3, 2, 3)
    manifest = json.loads((out / "dataset.json").read_text())
    assert manifest["runs"][0]["command"].startswith("fedleak dta render-dataset")
    assert manifest["runs"][0]["seed"] == 5 and manifest["runs"][0]["mitsuba"]

    # A crash loses at most the view being written: delete one, leave a torn temporary file.
    before = view_path(out, 1).read_bytes()
    view_path(out, 1).unlink()
    view_path(out, 1).with_name("000001.safetensors.tmp").write_bytes(b"torn")
    code, stdout, _ = run_cli(
        ["dta", "render-dataset", "--out", str(out), "--views", "4", *SMALL, "--json"]
    )

    summary = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0
    assert (summary["rendered_views"], summary["resumed_views"]) == (2, 2)
    assert view_path(out, 1).read_bytes() == before
    assert len(load_triplets(out).views) == 4
    assert len(json.loads((out / "dataset.json").read_text())["runs"]) == 2


def test_two_workers_render_the_same_files(tmp_path: Path, run_cli) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    for out, workers in ((one, "1"), (two, "2")):
        code, _, _ = run_cli(
            [
                "dta",
                "render-dataset",
                "--out",
                str(out),
                "--views",
                "2",
                *SMALL,
                "--workers",
                workers,
            ]
        )
        assert code == 0
    for index in range(2):
        assert view_path(one, index).read_bytes() == view_path(two, index).read_bytes()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--views", "0"], "views must be positive, got 0"),
        (["--views", "2", "--car", "truck"], "unknown car 'truck'; valid: sedan, van"),
        (["--views", "2", "--colours", "-1"], "colours must be positive"),
        (["--views", "2", "--workers", "0"], "--workers"),
    ],
)
def test_bad_input_fails_in_one_line(
    args: list[str], message: str, tmp_path: Path, run_cli
) -> None:
    code, _, stderr = run_cli(["dta", "render-dataset", "--out", str(tmp_path / "d"), *args])

    assert code == 2
    assert stderr.strip().splitlines() == [f"fedleak: error: {stderr.split('error: ')[1].strip()}"]
    assert message in stderr
    assert not (tmp_path / "d").exists()


def test_other_settings_are_refused_on_resume(tmp_path: Path, run_cli) -> None:
    out = tmp_path / "d"
    assert run_cli(["dta", "render-dataset", "--out", str(out), "--views", "1", *SMALL])[0] == 0

    code, _, stderr = run_cli(
        ["dta", "render-dataset", "--out", str(out), "--views", "1", "--size", "24"]
    )
    assert code == 2
    assert "holds renders made with other settings" in stderr and "size" in stderr
    assert len(stderr.strip().splitlines()) == 1


def test_train_then_evaluate_the_dtn(tmp_path: Path, run_cli) -> None:
    data, held_out, checkpoint = tmp_path / "train", tmp_path / "held-out", tmp_path / "dtn.st"
    assert run_cli(["dta", "render-dataset", "--out", str(data), "--views", "3", *SMALL])[0] == 0
    held_out_args = ["--colours", "2", "--size", "16", "--spp", "2", "--seed", "9"]
    assert (
        run_cli(["dta", "render-dataset", "--out", str(held_out), "--views", "2", *held_out_args])[
            0
        ]
        == 0
    )

    code, stdout, _ = run_cli(
        [
            "dta",
            "train-dtn",
            "--data",
            str(data),
            "--out",
            str(checkpoint),
            "--steps",
            "3",
            "--batch-size",
            "2",
            "--width",
            "8",
            "--device",
            "cpu",
            "--json",
        ]
    )
    trained = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0 and trained["steps"] == 3 and checkpoint.is_file()

    code, stdout, _ = run_cli(
        ["dta", "evaluate-dtn", "--dtn", str(checkpoint), "--data", str(held_out), "--json"]
    )
    scores = json.loads(stdout.strip().splitlines()[-1])
    assert code == 0
    assert scores["pairs"] == 4 and scores["views"] == 2
    assert {"mse", "psnr", "ssim", "st_lpips"} <= scores.keys()
    assert 0 <= scores["mse"] <= 1 and scores["st_lpips"] >= 0
    assert scores["patterns"]["pairs"] == 4  # two random patterns on each held-out view

    # Rendering held-out views from the training seed would score the DTN on what it saw.
    code, _, stderr = run_cli(["dta", "evaluate-dtn", "--dtn", str(checkpoint), "--seed", "5"])
    assert code == 2 and "drew this DTN's training views" in stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["train-dtn", "--data", "{tmp}/none"], "holds no rendered views"),
        (["evaluate-dtn", "--dtn", "{tmp}/none.safetensors"], "no DTN checkpoint at"),
    ],
)
def test_dtn_commands_fail_in_one_line(
    args: list[str], message: str, tmp_path: Path, run_cli
) -> None:
    code, _, stderr = run_cli(["dta", *(a.format(tmp=tmp_path) for a in args)])

    assert code == 2
    assert message in stderr and len(stderr.strip().splitlines()) == 1
