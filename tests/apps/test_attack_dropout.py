"""DIA and its oracle from the command line: on dataset images and on a Flower dropout run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors import safe_open

from fedsim.flower.run_dir import ground_truth_path, observation_files


@pytest.fixture(scope="module")
def dropout_run(simulated_run) -> Path:
    """A real Flower simulation of FedSGD clients training an MLP with dropout 0.25."""
    args = ["--model", "mlp", "--dropout", "0.25", "--clients", "2", "--rounds", "1"]
    return simulated_run("dropout", [*args, "--local-steps", "1", "--batch-size", "1"])


def test_a_dropout_run_keeps_its_masks_out_of_the_captures(dropout_run: Path) -> None:
    captured = observation_files(dropout_run)

    assert captured
    for path in captured:
        with safe_open(path, "pt") as saved:
            captured_keys = saved.keys()
            assert not any("mask" in key for key in captured_keys)
            assert "mask" not in json.dumps(saved.metadata())
        truth_path = ground_truth_path(dropout_run, 1, int(path.stem.removeprefix("client-")))
        with safe_open(truth_path, "pt") as truth:
            truth_keys = truth.keys()
        masks = [key for key in truth_keys if key.startswith("dropout_mask/")]
        assert len(masks) == 3  # one per dropout layer of the MLP


def test_the_oracle_reconstructs_a_captured_dropout_update(
    dropout_run: Path, tmp_path: Path, run_cli
) -> None:
    out = tmp_path / "wiig"
    args = ["attack", "--run", str(dropout_run), "--round", "1", "--client", "0"]
    args += ["--attack", "wiig", "--iterations", "300", "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    assert json.loads(stdout.strip().splitlines()[-1])["psnr"] > 30
    threat = json.loads((out / "config.json").read_text())["threat_model"]
    assert threat["oracle"] == "client's true dropout masks (ground truth)"


@pytest.mark.parametrize("attack", ["dia", "ig"])
def test_dia_and_its_baseline_run_on_dataset_images(
    attack: str, tmp_path: Path, data_dir: Path, run_cli
) -> None:
    args = ["attack", "--dataset", "cifar10", "--index", "3", "--model", "mlp"]
    args += ["--dropout", "0.25", "--attack", attack, "--iterations", "40"]
    args += ["--out", str(tmp_path / attack), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["iterations"] <= 40 and result["label_accuracy"] == 1.0
    threat = json.loads((tmp_path / attack / "config.json").read_text())["threat_model"]
    assert threat["oracle"] is None
