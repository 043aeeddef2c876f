"""Defenses in real Flower runs: secure aggregation hides every update, DP-SGD accumulates ε,
server-side central DP does not hide the update from the curious server."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fedsim.flower.run_dir import (
    CONFIG_FILE,
    PRIVACY_FILE,
    aggregate_path,
    observation_files,
    observation_path,
)
from fedsim.observation import Observation

COMMON = ["--model", "lenet", "--clients", "5", "--rounds", "1", "--batch-size", "2"]
COMMON += ["--seed", "3"]


@pytest.fixture(scope="module")
def plain_run(simulated_run) -> Path:
    return simulated_run("plain", COMMON)


@pytest.fixture(scope="module")
def secagg_run(simulated_run) -> Path:
    return simulated_run("secagg", [*COMMON, "--defense", "secagg:drop=1"])


def test_secure_aggregate_equals_the_mean_of_the_survivors_updates(plain_run, secagg_run) -> None:
    aggregate = Observation.load(aggregate_path(secagg_run, 1))
    assert aggregate.context["aggregate_of"] == "0,1,2,3"  # client 4 dropped out
    assert aggregate.batch_size == 4 * 2 and aggregate.defenses == ("secagg:threshold=0,drop=1",)
    plain = [Observation.load(observation_path(plain_run, 1, c)) for c in range(4)]
    for name, value in aggregate.client_update.items():
        mean = torch.stack([o.client_update[name] for o in plain]).double().mean(0)
        assert torch.allclose(value.double(), mean, atol=1e-6), name


def test_server_never_holds_an_individual_update_under_secagg(secagg_run, run_cli) -> None:
    assert observation_files(secagg_run) == []  # no client-*.safetensors at all
    stored = sorted(p.name for p in (secagg_run / "observations").rglob("*") if p.is_file())
    assert stored == ["aggregate.safetensors"]
    code, _, err = run_cli(["attack", "--run", str(secagg_run), "--round", "1", "--client", "0"])
    assert code == 2
    assert "was securely aggregated (secagg)" in err and "--aggregate" in err


def test_the_aggregate_is_attacked_and_scored_against_every_survivor(secagg_run, run_cli) -> None:
    out = secagg_run / "attacks" / "aggregate"
    args = ["attack", "--run", str(secagg_run), "--round", "1", "--aggregate"]
    code, _, err = run_cli([*args, "--iterations", "5", "--out", str(out), "--json"])
    assert code == 0, err
    metrics = json.loads((out / "metrics.json").read_text())
    assert len(metrics["true_labels"]) == 4 * 2  # the 4 survivors' 2 images each


def test_server_side_central_dp_still_shows_the_server_each_update(
    plain_run, simulated_run
) -> None:
    run = simulated_run(
        "flower-dp-server",
        [*COMMON, "--defense", "flower-dp-server:noise_multiplier=1,clipping_norm=0.01"],
    )
    for client in range(5):
        seen = Observation.load(observation_path(run, 1, client)).client_update
        plain = Observation.load(observation_path(plain_run, 1, client)).client_update
        assert all(seen[name].equal(plain[name]) for name in plain)


def test_dp_sgd_run_reports_group_norm_and_growing_epsilon(simulated_run) -> None:
    run = simulated_run(
        "dp-sgd",
        ["--model", "convnet64", "--clients", "2", "--rounds", "2", "--batch-size", "4"]
        + ["--local-steps", "2", "--defense", "dp-sgd:noise_multiplier=1,max_grad_norm=1"],
    )
    config = json.loads((run / CONFIG_FILE).read_text())["config"]
    assert config["dp_compatible"] is True  # convnet64's BatchNorm became GroupNorm
    observation = Observation.load(observation_path(run, 2, 1))
    assert observation.model.dp_compatible
    assert not any("running_mean" in name for name in observation.global_state)
    privacy = json.loads((run / PRIVACY_FILE).read_text())
    assert privacy["rounds"] == [1, 2]
    assert privacy["epsilon"][0] < privacy["epsilon"][1]
    assert observation.context["dp-epsilon"] == pytest.approx(privacy["epsilon"][1])
