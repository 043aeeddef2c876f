"""A run's defenses travel through Flower's run config as one string and come back whole."""

from __future__ import annotations

import pytest

from fedsim.errors import UserInputError
from fedsim.flower.config import SimulationConfig
from fedsim.flower.defense_hooks import undefended


def test_defenses_round_trip_through_the_run_config() -> None:
    config = SimulationConfig(
        clients=4, defenses=("clip:max_norm=1", "dp-sgd:noise_multiplier=1,max_grad_norm=1")
    )
    run_config = config.to_run_config()
    assert run_config["defenses"] == "clip:max_norm=1;dp-sgd:noise_multiplier=1,max_grad_norm=1"
    assert SimulationConfig.from_run_config(run_config, clients=4) == config
    assert SimulationConfig.from_run_config({"defenses": ""}, clients=4).defenses == ()


def test_initial_weights_round_trip_and_none_travels_as_an_empty_string(tmp_path) -> None:
    weights = tmp_path / "final_weights.safetensors"
    weights.write_bytes(b"")  # the config checks that the file is there; the run reads it
    config = SimulationConfig(initial_weights=tmp_path)

    assert config.initial_weights == weights
    assert config.to_run_config()["initial-weights"] == str(weights)
    assert SimulationConfig.from_run_config(config.to_run_config(), clients=8) == config
    assert SimulationConfig().to_run_config()["initial-weights"] == ""


def test_fedsim_alone_refuses_a_run_that_names_defenses() -> None:
    with pytest.raises(UserInputError, match="need the defenses package"):
        undefended(SimulationConfig(defenses=("clip:max_norm=1",)))
    assert undefended(SimulationConfig())[0] == SimulationConfig()
