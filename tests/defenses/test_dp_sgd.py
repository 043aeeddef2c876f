"""DP-SGD through Opacus: the noise has the configured scale and ε accumulates over rounds."""

from __future__ import annotations

import math

import pytest
import torch
from flwr.app import RecordDict

from defenses.dp_sgd import STATE_KEY, dp_gradient, dp_sgd_trainer
from defenses.specs import DpSgd
from fedsim.data import get_dataset_spec
from fedsim.models import ModelSpec, build_model

SPEC = get_dataset_spec("cifar10")


def lenet() -> torch.nn.Module:
    torch.manual_seed(0)
    return build_model(ModelSpec("lenet", 10, SPEC.image_shape))


def test_dp_gradient_noise_has_the_configured_scale() -> None:
    params = DpSgd(noise_multiplier=0.5, max_grad_norm=2.0)
    inputs, labels = torch.randn(4, *SPEC.image_shape), torch.tensor([0, 1, 2, 3])
    model = lenet()
    first, epsilon = dp_gradient(model, inputs, labels, params, torch.Generator().manual_seed(1))
    second, _ = dp_gradient(model, inputs, labels, params, torch.Generator().manual_seed(2))
    # Same clipped gradients, two noise draws: the difference is noise of std √2·σ·C/B.
    difference = torch.cat([(first[n] - second[n]).flatten() for n in first])
    expected = math.sqrt(2) * params.noise_multiplier * params.max_grad_norm / len(labels)
    assert float(difference.std()) == pytest.approx(expected, rel=0.02)
    assert epsilon > 0


def test_dp_gradient_clips_each_example() -> None:
    params = DpSgd(noise_multiplier=1e-9, max_grad_norm=0.1)
    inputs, labels = torch.randn(3, *SPEC.image_shape) * 50, torch.tensor([0, 1, 2])
    gradient, _ = dp_gradient(lenet(), inputs, labels, params, torch.Generator().manual_seed(0))
    norm = math.sqrt(sum(float((g**2).sum()) for g in gradient.values()))
    assert norm <= params.max_grad_norm + 1e-6  # mean of per-example gradients of norm ≤ C


def test_epsilon_grows_across_rounds_with_the_state_kept() -> None:
    train = dp_sgd_trainer(DpSgd(noise_multiplier=1.0, max_grad_norm=1.0))
    state = RecordDict()
    batches = [(torch.rand(4, *SPEC.image_shape), torch.randint(0, 10, (4,))) for _ in range(2)]
    settings = {"lr": 0.1, "train_mode": True, "optimizer": "sgd", "momentum": 0.0}
    epsilons = []
    model = lenet()
    for _ in range(3):
        metrics = train(
            model, batches, SPEC, **settings, weight_decay=0.0, partition_size=40, state=state
        )
        epsilons.append(metrics["dp-epsilon"])
    assert epsilons[0] < epsilons[1] < epsilons[2]
    assert list(state[STATE_KEY]["steps"]) == [6]  # one (σ, q) entry, 3 rounds × 2 steps
    assert list(state[STATE_KEY]["rate"]) == [pytest.approx(4 / 40)]
    assert not any(name.startswith("_module") for name in model.state_dict())
    assert epsilons[-1] == pytest.approx(
        train(
            lenet(),
            batches * 3,
            SPEC,
            **settings,
            weight_decay=0.0,
            partition_size=40,
            state=RecordDict(),
        )["dp-epsilon"]
    )
