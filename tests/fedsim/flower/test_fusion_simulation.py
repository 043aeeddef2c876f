"""``fedleak simulate --model fusion``: Flower sends and averages the heads, never the frozen
trunks, and ``fedleak attack`` inverts the captured head update through the public trunks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import load_file

from fedsim.flower.run_dir import FINAL_WEIGHTS_FILE, observation_path
from fedsim.models.fusion import HEADS
from fedsim.observation import Observation

HEAD_KEYS = sorted(f"heads.{head}.{part}" for head in HEADS for part in ("weight", "bias"))


@pytest.fixture(scope="module")
def fusion_run(simulated_run) -> Path:
    """2 clients × 1 round of one SGD step on one CIFAR-10 image each."""
    args = ["--dataset", "cifar10", "--model", "fusion", "--clients", "2", "--rounds", "1"]
    args += ["--local-steps", "1", "--batch-size", "1", "--lr", "0.1"]
    return simulated_run("fusion", args)


def test_only_the_heads_are_sent_and_only_the_fused_head_changes(fusion_run: Path) -> None:
    path = observation_path(fusion_run, 1, 0)
    observation = Observation.load(path)
    stored = load_file(str(path))

    assert sorted(observation.global_state) == HEAD_KEYS
    assert sorted(observation.client_update) == ["heads.fused.bias", "heads.fused.weight"]
    assert observation.client_update["heads.fused.weight"].abs().sum() > 0
    assert not any("stream" in key or "trunk" in key for key in stored)
    final = load_file(str(fusion_run / FINAL_WEIGHTS_FILE))
    assert sorted(final) == HEAD_KEYS


def test_evaluate_reads_the_runs_final_heads(fusion_run: Path, run_cli) -> None:
    args = ["fusion", "evaluate", "--heads", str(fusion_run), "--images", "4", "--device", "cpu"]

    code, stdout, stderr = run_cli([*args, "--json"])

    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["heads_file"] == str((fusion_run / FINAL_WEIGHTS_FILE).resolve())


def test_attack_inverts_the_captured_head_update(fusion_run: Path, tmp_path: Path, run_cli) -> None:
    out = tmp_path / "attack"
    args = ["attack", "--run", str(fusion_run), "--round", "1", "--client", "0"]
    args += ["--attack", "ig-fast", "--iterations", "20", "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    assert result["iterations"] == 20 and result["psnr"] is not None
