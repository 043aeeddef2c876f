"""The dropout-mask search space of DIA and its oracle WIIG, on real FedSGD dropout updates."""

from __future__ import annotations

import pytest
import torch

from attacks import GradientInversion, get_preset
from attacks.dropout_masks import initial_masks, mask_rate_penalty, mask_shapes
from attacks.matching import gradient_matching_objective
from attacks.schedules import Plateau
from fedsim.data import get_dataset_spec, normalize
from fedsim.errors import UserInputError
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model

CIFAR = get_dataset_spec("cifar10")
RATE = 0.25
CPU = torch.device("cpu")


def _dropout_update(model_name: str, rate: float = RATE):
    torch.manual_seed(0)
    spec = ModelSpec(model_name, 10, CIFAR.image_shape, rate)
    images = torch.rand(1, *CIFAR.image_shape)
    return fedsgd_observation(build_model(spec), spec, CIFAR, images, torch.tensor([3]))


def _fresh_masks(observation, seed: int = 1) -> dict[str, torch.Tensor]:
    shapes = mask_shapes(build_model(observation.model), CIFAR.image_shape, 1)
    drawn = initial_masks(shapes, RATE, 1, torch.Generator().manual_seed(seed))
    return {name: mask[0] for name, mask in drawn.items()}


@pytest.mark.parametrize("model_name", ["mlp", "vit-small", "convnet64"])
def test_true_masks_and_true_image_explain_the_update(model_name: str) -> None:
    observation, truth = _dropout_update(model_name)
    objective = gradient_matching_objective(observation, get_preset("dia", tv_weight=0.0), CPU)
    inputs, labels = normalize(truth.images, CIFAR), torch.nn.functional.one_hot(truth.labels, 10)
    true_masks = {name: mask.float() for name, mask in truth.dropout_masks.items()}

    _, with_true_masks = objective(inputs, labels.float(), true_masks)
    _, with_other_masks = objective(inputs, labels.float(), _fresh_masks(observation))
    _, without_masks = objective(inputs, labels.float(), {})

    assert with_true_masks.item() < 1e-6
    assert with_other_masks.item() > 1e-3 and without_masks.item() > 1e-3


@pytest.mark.parametrize("model_name", ["mlp", "vit-small"])
def test_gradients_flow_to_every_mask(model_name: str) -> None:
    observation, truth = _dropout_update(model_name)
    objective = gradient_matching_objective(observation, get_preset("dia"), CPU)
    masks = {n: m.requires_grad_(True) for n, m in _fresh_masks(observation).items()}
    labels = torch.nn.functional.one_hot(truth.labels, 10).float()

    loss, _ = objective(torch.randn(1, *CIFAR.image_shape), labels, masks)
    loss.backward()

    for name, mask in masks.items():
        assert mask.grad is not None and mask.grad.abs().sum() > 0, name
        assert torch.isfinite(mask.grad).all(), name


def test_the_mask_rate_regulariser_pulls_the_drop_rate_to_p() -> None:
    masks = {"a": torch.ones(1, 512, requires_grad=True), "b": torch.zeros(1, 64, 256)}
    masks["b"].requires_grad_(True)
    optimizer = torch.optim.Adam(masks.values(), lr=0.01)

    for _ in range(300):
        optimizer.zero_grad()
        mask_rate_penalty(masks, RATE).backward()
        optimizer.step()
        with torch.no_grad():
            for mask in masks.values():
                mask.clamp_(0, 1)

    for mask in masks.values():
        assert abs((1 - mask.mean().item()) - RATE) < 0.01


def test_dia_searches_masks_inside_the_unit_interval() -> None:
    observation, _ = _dropout_update("mlp")

    reconstruction = GradientInversion(get_preset("dia", iterations=30, restarts=2))(observation)

    assert reconstruction.images.shape == (1, *CIFAR.image_shape)
    assert reconstruction.iterations == 30
    assert reconstruction.gradient_distance < reconstruction.history[0]


def test_wiig_refuses_to_run_without_the_ground_truth_masks() -> None:
    observation, _ = _dropout_update("mlp")

    with pytest.raises(UserInputError, match="needs the client's true dropout masks"):
        GradientInversion(get_preset("wiig", iterations=1))(observation)


def test_wiig_refuses_masks_that_do_not_fit_the_model() -> None:
    observation, truth = _dropout_update("mlp")
    wrong = {name: mask[:, :10] for name, mask in truth.dropout_masks.items()}

    with pytest.raises(UserInputError, match="do not fit the model's dropout layers"):
        GradientInversion(get_preset("wiig", iterations=1))(observation, oracle_masks=wrong)


def test_plateau_cuts_the_lr_then_stops_the_search() -> None:
    # 100 iterations: a cut after 4 steps without improvement, a stop after 20.
    plateau = Plateau(get_preset("dia"), 100, active=True)
    factors = []

    for iteration in range(1, 23):
        plateau.update(1.0 if iteration > 1 else 2.0, iteration)
        factors.append(plateau.factor)
        assert plateau.stopped == (iteration == 22)

    assert factors[4] == 1.0 and factors[5] == pytest.approx(0.1)  # best at 2, cut at 6
    assert factors[9] == pytest.approx(0.01)  # and again 4 steps after the cut
