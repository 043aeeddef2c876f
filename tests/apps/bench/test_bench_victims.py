"""Trained victims: `[settings.victim]` trains the cells' model with Flower once, before the
attacks, and every cell takes its FedSGD gradient at that run's final global weights."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from apps.bench.report import load_report
from apps.bench.runner import run_campaign
from apps.bench.suite import load_suite
from fedsim.flower.run_dir import observation_path
from fedsim.observation import Observation

# One Flower run of MNIST LeNet (2 clients, 2 rounds of 3 local steps), attacked twice.
SUITE = """
[settings]
iterations = 2
device = "cpu"

[settings.victim]
clients = 2
rounds = 2
local_steps = 3
batch_size = 16
partition = "iid"
test_images = 50

[grid]
dataset = "mnist"
model = "lenet"
attack = "ig-fast"
batch_size = [1]
images = [2]
seed = [0]

[report]
rows = ["victim_rounds", "batch_size"]
metrics = ["psnr", "victim_accuracy"]
"""


def test_cells_attack_the_victims_final_weights_trained_once(tmp_path: Path, data_dir) -> None:
    path = tmp_path / "victim.toml"
    path.write_text(SUITE)
    suite = load_suite(path)
    out = tmp_path / "campaign"
    notices: list[str] = []

    summary = run_campaign(suite, out, on_notice=notices.append)

    assert (summary.done, summary.failed) == (2, 0)
    [victim] = (out / "federated" / "victims").iterdir()  # one run shared by both cells
    assert [n for n in notices if n.startswith("victim")] == [
        "victim 1/1: mnist/lenet trained for 2 rounds (a Flower run, unless cached)"
    ]
    final = load_file(str(victim / "final_weights.safetensors"))
    accuracy = json.loads((victim / "victim.json").read_text())["accuracy"][-1]
    for cell_dir in (out / "cells").iterdir():
        observed = Observation.load(cell_dir / "observation.safetensors").global_state
        assert all(torch.equal(observed[name], final[name]) for name in observed)
    [report] = load_report(out)
    [row] = report.rows
    assert row.keys == {"victim_rounds": 2, "batch_size": 1}
    assert row.medians["ig-fast"]["victim_accuracy"] == accuracy


def test_a_capture_beside_a_victim_attacks_a_round_of_the_trained_model(tmp_path: Path) -> None:
    path = tmp_path / "both.toml"
    path.write_text(SUITE.replace("[settings.victim]", "[settings.capture]\n\n[settings.victim]"))
    out = tmp_path / "campaign"
    notices: list[str] = []

    summary = run_campaign(load_suite(path), out, on_notice=notices.append)

    assert (summary.done, summary.failed) == (2, 0)
    [victim] = (out / "federated" / "victims").iterdir()
    [capture] = (out / "federated" / "captures").iterdir()
    assert notices[:2] == [
        "victim 1/1: mnist/lenet trained for 2 rounds (a Flower run, unless cached)",
        "capture 1/1: mnist/lenet b1 eval mode, one round from the trained victim (a Flower run,"
        " unless cached)",
    ]
    final = load_file(str(victim / "final_weights.safetensors"))
    captured = Observation.load(observation_path(capture / "run", 1, 0))
    assert all(torch.equal(captured.global_state[name], final[name]) for name in final)
    accuracy = json.loads((victim / "victim.json").read_text())["accuracy"][-1]
    [row] = load_report(out)[0].rows
    assert row.medians["ig-fast"]["victim_accuracy"] == accuracy
