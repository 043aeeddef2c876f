"""``fedleak attack --run``: attacks on updates a curious Flower server captured, scored apart."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from apps.attack_run import load_capture
from attacks import get_preset
from attacks.matching import gradient_matching_objective
from fedsim.data import get_dataset_spec, normalize
from fedsim.observation import Observation

ROUND, CLIENT = 1, 1
MOMENTUM, WEIGHT_DECAY = 0.9, 5e-3


@pytest.fixture(scope="module")
def multi_step_run(simulated_run) -> Path:
    """A real Flower simulation: 2 clients × 1 round, 2 local SGD steps (momentum, weight
    decay) of one MNIST digit each."""
    args = ["--model", "lenet", "--clients", "2", "--rounds", "1", "--local-steps", "2"]
    args += ["--batch-size", "1", "--lr", "0.1"]
    args += ["--momentum", str(MOMENTUM), "--weight-decay", str(WEIGHT_DECAY)]
    return simulated_run("capture", args)


def test_attack_on_a_capture_replays_the_local_steps(
    multi_step_run: Path, tmp_path: Path, run_cli
) -> None:
    out = tmp_path / "attack"
    args = ["attack", "--run", str(multi_step_run), "--round", str(ROUND)]
    args += ["--client", str(CLIENT), "--iterations", "300", "--out", str(out), "--json"]

    code, stdout, stderr = run_cli(args)

    assert code == 0, stderr
    result = json.loads(stdout.strip().splitlines()[-1])
    config = json.loads((out / "config.json").read_text())
    threat = config["threat_model"]
    assert threat["attack_replays_local_steps"] is True
    assert threat["labels_granted"] is False
    assert result["label_accuracy"] == 1.0  # two digits, labels estimated from the update
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["per_image"]["psnr"]) == 2  # both steps' images are reconstructed
    assert Observation.load(out / "observation.safetensors").labels is None


def test_granted_labels_and_the_naive_view_are_recorded(
    multi_step_run: Path, tmp_path: Path, run_cli
) -> None:
    out = tmp_path / "naive"
    args = ["attack", "--run", str(multi_step_run), "--round", "1", "--client", "0"]
    args += ["--labels", "given", "--assume-fedsgd", "--iterations", "5", "--out", str(out)]

    code, _, stderr = run_cli(args)

    assert code == 0, stderr
    threat = json.loads((out / "config.json").read_text())["threat_model"]
    assert threat["labels_granted"] is True
    assert threat["attack_replays_local_steps"] is False


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["--round", "9", "--client", "0"], "round 9"),
        (["--round", "1", "--client", "5"], "client 5"),
        (["--round", "1"], "--client"),
        (["--round", "1", "--client", "0", "--index", "3"], "--index"),
    ],
)
def test_bad_capture_requests_get_one_line(
    args: list[str], named: str, multi_step_run: Path, run_cli
) -> None:
    code, stdout, stderr = run_cli(["attack", "--run", str(multi_step_run), *args])

    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0], stderr
    assert stdout == ""


def test_the_replayed_client_explains_its_real_capture(multi_step_run: Path) -> None:
    observation, truth = load_capture(multi_step_run, ROUND, CLIENT)
    config = get_preset("ig", tv_weight=0.0)
    objective = gradient_matching_objective(observation, config, torch.device("cpu"))
    soft_labels = torch.nn.functional.one_hot(truth.labels, 10).float()
    inputs = normalize(truth.images, get_dataset_spec("mnist"))

    _, at_truth = objective(inputs, soft_labels, {})
    _, elsewhere = objective(torch.zeros_like(inputs), soft_labels, {})

    assert (observation.momentum, observation.weight_decay) == (MOMENTUM, WEIGHT_DECAY)
    assert at_truth.item() < 1e-5 < elsewhere.item()
