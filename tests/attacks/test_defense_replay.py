"""Defense-aware matching: with the recorded defense replayed, the true batch explains the
observed update again (the objective is ~0 there), which it does not without the replay."""

from __future__ import annotations

import pytest
import torch

from attacks import get_preset
from attacks.defense_replay import defense_replay, replayed_defenses
from attacks.matching import gradient_matching_objective
from fedsim.data import get_dataset_spec, normalize

CPU = torch.device("cpu")


def _gaps(observation, truth, objective: str) -> tuple[float, float]:
    """(gap with the defense replayed, gap without) at the true batch."""
    soft_labels = torch.nn.functional.one_hot(truth.labels, 10).float()
    inputs = normalize(truth.images, get_dataset_spec("cifar10"))
    gaps = []
    for aware in (True, False):
        config = get_preset("ig", objective=objective, tv_weight=0.0, defense_aware=aware)
        _, gap = gradient_matching_objective(observation, config, CPU)(inputs, soft_labels, {})
        gaps.append(gap.item())
    return gaps[0], gaps[1]


@pytest.mark.parametrize(
    ("model_name", "defenses", "objective"),
    [
        ("lenet", ["clip:max_norm=0.5"], "l2"),
        ("lenet", ["prune:fraction=0.9"], "cosine"),
        ("mlp", ["soteria:fraction=0.8"], "cosine"),
        ("mlp", ["soteria:fraction=0.8", "clip:max_norm=0.5"], "l2"),
    ],
)
def test_the_replayed_defense_makes_the_true_batch_explain_the_update(
    model_name: str, defenses: list[str], objective: str, defended_observation
) -> None:
    observation, truth = defended_observation(model_name, [1, 4, 7], defenses)

    aware, unaware = _gaps(observation, truth, objective)

    assert aware < 1e-6 * max(1.0, unaware)
    assert unaware > 1e-4


def test_quantisation_is_replayed_onto_the_observed_levels(defended_observation) -> None:
    observation, _ = defended_observation("lenet", [1, 4, 7], ["quantize:bits=2"])
    target = list(observation.gradient().values())
    replay = defense_replay(observation, target)
    dummy = [torch.randn_like(t, requires_grad=True) for t in target]

    replayed = replay(dummy)

    for tensor, observed in zip(replayed, target, strict=True):
        assert len(torch.unique(observed)) <= 4
        levels = observed.min() + torch.arange(4) * (observed.max() - observed.min()) / 3
        nearest_level = (tensor.detach().flatten()[:, None] - levels[None]).abs().min(dim=1)
        assert nearest_level.values.max() < 1e-6  # on the observed levels, up to rounding
    sum(t.sum() for t in replayed).backward()  # straight through: the identity's gradient
    assert all(torch.equal(d.grad, torch.ones_like(d)) for d in dummy)


def test_noise_is_not_replayed_and_the_config_says_what_was(defended_observation) -> None:
    observation, _ = defended_observation("lenet", [1, 4, 7], ["gaussian:std=0.01"])

    assert replayed_defenses(observation) == []
    assert defense_replay(observation, list(observation.gradient().values())) is None
