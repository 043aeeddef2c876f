"""The optimisation loop and its objective, on observations built by a real FedSGD step."""

from __future__ import annotations

import pytest
import torch

from attacks import GradientInversion, InvertingGradients, get_preset
from attacks.matching import gradient_matching_objective
from attacks.metrics import psnr
from fedsim.data import get_dataset_spec, load_dataset, normalize
from fedsim.fedsgd import fedsgd_observation
from fedsim.flower.local_training import train_steps
from fedsim.models import ModelSpec, build_model
from fedsim.observation import ClientOptimizer, Observation


@pytest.mark.parametrize("objective", ["cosine", "l2"])
@pytest.mark.parametrize(("model_name", "train_mode"), [("lenet", False), ("convnet64", True)])
def test_objective_vanishes_at_the_true_batch(
    objective: str, model_name: str, train_mode: bool, synthetic_observation
) -> None:
    observation, truth = synthetic_observation(model_name, [1, 4], train_mode=train_mode)
    config = get_preset("ig", objective=objective, tv_weight=0.0)
    matching = gradient_matching_objective(observation, config, torch.device("cpu"))
    soft_labels = torch.nn.functional.one_hot(truth.labels, 10).float()
    spec = get_dataset_spec("cifar10")
    _, at_truth = matching(normalize(truth.images, spec), soft_labels, {})
    _, elsewhere = matching(normalize(torch.rand_like(truth.images), spec), soft_labels, {})

    assert at_truth.item() < 1e-6 * max(1.0, elsewhere.item())
    assert elsewhere.item() > 1e-3


def test_restarts_run_as_a_batch_and_the_best_is_kept(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [3])
    attack = InvertingGradients(iterations=5, restarts=3)

    reconstruction = attack(observation)

    assert len(reconstruction.restart_distances) == 3
    assert reconstruction.gradient_distance == min(reconstruction.restart_distances)
    assert reconstruction.images.shape == (1, 3, 32, 32)
    assert reconstruction.images.min() >= 0 and reconstruction.images.max() <= 1


def test_same_seed_same_reconstruction(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [3])
    config = get_preset("ig", iterations=10)

    first = GradientInversion(config, seed=7)(observation)
    again = GradientInversion(config, seed=7)(observation)
    other = GradientInversion(config, seed=8)(observation)

    assert torch.equal(first.images, again.images)
    assert not torch.equal(first.images, other.images)


def test_time_budget_stops_the_search(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [3])

    reconstruction = InvertingGradients(iterations=1_000_000, time_budget_s=0.5)(observation)

    assert 0 < reconstruction.iterations < 1_000_000
    assert reconstruction.wall_s < 5


def test_progress_reports_each_step(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [3])
    seen: list[tuple[float, int, float]] = []

    GradientInversion(get_preset("ig", iterations=4), progress=lambda *a: seen.append(a))(
        observation
    )

    assert [step for _, step, _ in seen] == [1, 2, 3, 4]
    assert seen[-1][0] == 1.0


def test_inverting_gradients_reconstructs_an_mnist_digit(data_dir) -> None:
    data = load_dataset("mnist", "test")
    images, labels = data.images([0])
    torch.manual_seed(0)
    spec = ModelSpec("lenet", 10, data.spec.image_shape)
    observation, truth = fedsgd_observation(build_model(spec), spec, data.spec, images, labels)

    reconstruction = InvertingGradients(iterations=1_500)(observation)

    assert reconstruction.labels.tolist() == truth.labels.tolist()
    assert psnr(reconstruction.images, truth.images).item() > 25


def multi_step_observation(
    steps: int,
    batch: int,
    momentum: float = 0.0,
    weight_decay: float = 0.0,
    optimizer: ClientOptimizer = "sgd",
) -> tuple[Observation, torch.Tensor]:
    """A client that ran ``steps`` optimiser steps on fresh batches; returns what it sent."""
    spec = get_dataset_spec("cifar10")
    torch.manual_seed(0)
    model_spec = ModelSpec("lenet", 10, spec.image_shape)
    model = build_model(model_spec)
    global_state = {k: v.clone() for k, v in model.state_dict().items()}
    images = torch.rand(steps * batch, *spec.image_shape)
    labels = torch.arange(steps * batch) % 10
    lr = 0.01 if optimizer == "adam" else 0.5
    batches = list(zip(images.split(batch), labels.split(batch), strict=True))
    train_steps(
        model,
        batches,
        spec,
        lr=lr,
        train_mode=False,
        optimizer=optimizer,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    observation = Observation(
        model=model_spec,
        dataset="cifar10",
        mean=spec.mean,
        std=spec.std,
        global_state=global_state,
        client_update={n: p.detach().clone() for n, p in model.named_parameters()},
        update_kind="weights",
        lr=lr,
        optimizer=optimizer,
        local_steps=steps,
        batch_size=batch,
        num_examples=steps * batch,
        train_mode=False,
        labels=labels,
        momentum=momentum,
        weight_decay=weight_decay,
    )
    return observation, normalize(images, spec)


@pytest.mark.parametrize("objective", ["cosine", "l2"])
@pytest.mark.parametrize(
    ("optimizer", "momentum", "weight_decay"),
    [("sgd", 0.0, 0.0), ("sgd", 0.9, 5e-3), ("adam", 0.0, 0.0), ("adam", 0.0, 5e-3)],
)
def test_replaying_local_steps_explains_a_multi_step_update(
    objective: str, optimizer: str, momentum: float, weight_decay: float
) -> None:
    observation, true_inputs = multi_step_observation(3, 2, momentum, weight_decay, optimizer)
    soft_labels = torch.nn.functional.one_hot(observation.labels, 10).float()
    cpu = torch.device("cpu")
    replayed = gradient_matching_objective(observation, get_preset("ig", objective=objective), cpu)
    naive_config = get_preset("ig", objective=objective, assume_fedsgd=True)
    naive = gradient_matching_objective(observation, naive_config, cpu)

    _, replay_gap = replayed(true_inputs, soft_labels, {})
    _, naive_gap = naive(true_inputs, soft_labels, {})

    assert replay_gap.item() < 1e-6 * max(1.0, naive_gap.item())
    assert naive_gap.item() > 1e-4


def test_a_multi_step_update_is_attacked_with_all_its_images() -> None:
    observation, _ = multi_step_observation(steps=2, batch=2)

    reconstruction = InvertingGradients(iterations=3)(observation)

    assert reconstruction.images.shape == (4, 3, 32, 32)
    assert reconstruction.labels.tolist() == observation.labels.tolist()
