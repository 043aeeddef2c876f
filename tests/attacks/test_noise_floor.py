"""The noise floor: the true gradient's own distance to a noised one, and GIFD's stage descent
stopping there when the attacker knows the noise."""

from __future__ import annotations

import math

import pytest
import torch

from attacks import GradientInversion, get_preset
from attacks.generators import StagedGenerator
from attacks.noise_floor import noise_floor
from attacks.objectives import cosine_distance

LABELS = [1, 4, 7]


def _std_for_share(synthetic_observation, share: float) -> float:
    """The noise std that leaves the clean gradient ``share`` of the noised one's energy."""
    clean, _ = synthetic_observation("lenet", LABELS)
    gradient = list(clean.gradient().values())
    energy = float(sum((t.double() ** 2).sum() for t in gradient))
    coordinates = sum(t.numel() for t in gradient)
    return math.sqrt(energy * (1 - share) / share / coordinates)


@pytest.mark.parametrize("share", [0.05, 0.5])
def test_the_floor_brackets_the_true_gradients_own_distance(
    share: float, synthetic_observation, defended_observation
) -> None:
    clean, _ = synthetic_observation("lenet", LABELS)
    std = _std_for_share(synthetic_observation, share)
    noised, _ = defended_observation("lenet", LABELS, [f"gaussian:std={std}"])

    floor = noise_floor(noised)
    true_distance = float(
        cosine_distance(list(clean.gradient().values()), list(noised.gradient().values()))
    )

    assert floor is not None
    assert floor.low <= true_distance <= floor.high
    assert floor.signal_share == pytest.approx(share, abs=0.02)
    assert floor.floor == pytest.approx(1 - math.sqrt(share), abs=0.02)


def test_no_recorded_noise_has_no_floor(defended_observation) -> None:
    clipped, _ = defended_observation("lenet", LABELS, ["clip:max_norm=0.5"])

    assert noise_floor(clipped) is None


def _gifd(observation, **overrides) -> dict:
    """GIFD's recorded config after a short search of ``observation``."""
    torch.manual_seed(0)
    generator = StagedGenerator((3, 32, 32)).eval().requires_grad_(False)
    config = get_preset("gifd", iterations=40, restarts=2, **overrides)
    reconstruction = GradientInversion(config, generator=generator)(observation)
    assert reconstruction.iterations == 40  # every stage's share spent, stopped or not
    return reconstruction.config


def test_a_defense_aware_gifd_stops_descending_at_the_noise_floor(
    synthetic_observation, defended_observation
) -> None:
    std = _std_for_share(synthetic_observation, 0.001)  # a gradient almost all noise
    noised, _ = defended_observation("lenet", LABELS, [f"gaussian:std={std}"])
    stages = len(StagedGenerator((3, 32, 32)).stages)

    aware = _gifd(noised, defense_aware=True)
    unaware = _gifd(noised)

    assert aware["best_stage"] == 0 and len(aware["stage_distances"]) == 1
    assert aware["stage_distances"][0] <= aware["noise_floor"]["high"]
    assert unaware["noise_floor"] is None and len(unaware["stage_distances"]) == stages


def test_without_noise_a_defense_aware_gifd_searches_every_stage(defended_observation) -> None:
    clipped, _ = defended_observation("lenet", LABELS, ["clip:max_norm=0.5"])

    config = _gifd(clipped, defense_aware=True)

    assert config["noise_floor"] is None
    assert len(config["stage_distances"]) == len(StagedGenerator((3, 32, 32)).stages)
