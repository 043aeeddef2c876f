"""``fedleak attack --weights``: the FedSGD gradient of a trained model, a Flower run's global
model after its last round, instead of the model's seeded initialisation."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fedsim.observation import Observation

ATTACK = ["attack", "--dataset", "mnist", "--model", "lenet", "--index", "5"]
ATTACK += ["--iterations", "1", "--restarts", "1"]


@pytest.fixture(scope="module")
def trained_run(simulated_run) -> Path:
    return simulated_run(
        "trained", ["--model", "lenet", "--clients", "2", "--rounds", "2", "--seed", "1"]
    )


def _observation(out: Path) -> Observation:
    return Observation.load(out / "observation.safetensors")


def test_the_gradient_is_taken_at_the_runs_final_weights(
    trained_run: Path, tmp_path: Path, run_cli
) -> None:
    seeded, trained = tmp_path / "seeded", tmp_path / "trained"

    code_a, _, err_a = run_cli([*ATTACK, "--out", str(seeded)])
    code_b, _, err_b = run_cli([*ATTACK, "--weights", str(trained_run), "--out", str(trained)])

    assert (code_a, code_b) == (0, 0), err_a + err_b
    config = json.loads((trained / "config.json").read_text())
    assert config["threat_model"]["victim_weights"].startswith(f"trained weights {trained_run}")
    final = load_file(str(trained_run / "final_weights.safetensors"))
    at_trained, at_seeded = _observation(trained).global_state, _observation(seeded).global_state
    for name, weight in at_trained.items():  # the attacked model is the run's global model
        assert torch.equal(weight, final[name]), name
    assert any(not torch.equal(at_seeded[name], final[name]) for name in at_trained)


def test_weights_of_another_model_or_no_file_fail_in_one_line(
    tmp_path: Path, run_cli, data_dir
) -> None:
    other = tmp_path / "final_weights.safetensors"
    save_file({"w": torch.zeros(1)}, str(other), metadata={"model": "mlp"})

    code, _, stderr = run_cli([*ATTACK, "--weights", str(other), "--out", str(tmp_path / "a")])
    assert code == 2 and len(stderr.strip().splitlines()) == 1
    assert "are a 'mlp' model's; the model here is 'lenet'" in stderr

    code, _, stderr = run_cli([*ATTACK, "--weights", str(tmp_path / "nowhere")])
    assert code == 2 and "no weights at" in stderr and len(stderr.strip().splitlines()) == 1
