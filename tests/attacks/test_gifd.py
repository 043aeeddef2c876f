"""GIFD's parts: staged generators, the l1-ball projection, and searches that find a target
the generator itself produced."""

from __future__ import annotations

import pytest
import torch

from attacks import GradientInversion, get_preset
from attacks.generators import StagedGenerator, load_generator, save_generator
from attacks.generators.checkpoint import GeneratorRecord
from attacks.metrics import psnr
from attacks.search_spaces import project_to_l1_ball, project_to_sphere
from fedsim.data import get_dataset_spec
from fedsim.errors import UserInputError
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model

CIFAR = get_dataset_spec("cifar10")


@pytest.mark.parametrize("image_shape", [(3, 32, 32), (1, 28, 28)])
def test_running_the_stages_in_sequence_is_the_full_forward(image_shape) -> None:
    torch.manual_seed(0)
    generator = StagedGenerator(image_shape).eval()
    latents = torch.randn(3, generator.latent_dim)

    full = generator(latents)

    assert full.shape == (3, *image_shape)
    for stage in range(len(generator.stages)):
        resumed = generator.from_stage(stage, generator.stage_input(stage, latents))
        assert torch.equal(resumed, full), stage


def test_l1_projection_matches_the_closed_form() -> None:
    # |3| + |1| + |-2| = 6 > 2: threshold 1.5 gives (1.5, 0, -0.5), whose l1 norm is 2.
    change = torch.tensor([3.0, 1.0, -2.0]).view(1, 1, 3)

    projected = project_to_l1_ball(change, 2.0)

    torch.testing.assert_close(projected.flatten(), torch.tensor([1.5, 0.0, -0.5]))


def test_l1_projection_is_the_nearest_point_of_the_ball() -> None:
    torch.manual_seed(0)
    change = torch.randn(2, 3, 4, 5, 5)
    radius = torch.tensor([[1.0, 5.0, 1e3], [0.5, 2.0, 10.0]])

    projected = project_to_l1_ball(change, radius)

    norms = projected.flatten(2).abs().sum(-1)
    assert (norms <= radius * (1 + 1e-5)).all()
    assert torch.equal(projected[0, 2], change[0, 2])  # already inside: unchanged
    distance = (projected - change).flatten(2).norm(dim=-1)
    for _ in range(20):  # any other point of the ball is farther away
        other = project_to_l1_ball(projected + 0.05 * torch.randn_like(change), radius)
        assert ((other - change).flatten(2).norm(dim=-1) >= distance - 1e-5).all()


def test_latents_are_kept_on_the_sphere() -> None:
    latents = project_to_sphere(torch.randn(2, 3, 128) * 7)

    torch.testing.assert_close(latents.norm(dim=-1), torch.full((2, 3), 128**0.5))


@pytest.mark.parametrize("attack", ["gan-latent", "gifd"])
def test_search_recovers_an_image_the_generator_made(attack: str) -> None:
    torch.manual_seed(0)
    generator = StagedGenerator(CIFAR.image_shape).eval().requires_grad_(False)
    target = (generator(torch.randn(1, generator.latent_dim)) + 1) / 2
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    observation, truth = fedsgd_observation(
        build_model(spec), spec, CIFAR, target, torch.tensor([2])
    )

    config = get_preset(attack, iterations=300, restarts=2)
    reconstruction = GradientInversion(config, generator=generator)(observation)

    assert psnr(reconstruction.images, truth.images).item() > 30
    assert reconstruction.iterations == 300


def test_a_generator_search_needs_a_generator() -> None:
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    observation, _ = fedsgd_observation(
        build_model(spec), spec, CIFAR, torch.rand(1, *CIFAR.image_shape), torch.tensor([1])
    )

    with pytest.raises(UserInputError, match="searches a generator's inputs; none was given"):
        GradientInversion(get_preset("gifd", iterations=1))(observation)


def test_checkpoints_round_trip_with_their_record(tmp_path) -> None:
    torch.manual_seed(0)
    generator = StagedGenerator((1, 28, 28)).eval()
    record = GeneratorRecord("mnist", (1, 28, 28), 128, (0, 1), 1, 0, "fedleak train-generator")
    save_generator(tmp_path / "g.safetensors", generator, record)

    loaded, loaded_record = load_generator(tmp_path / "g.safetensors")

    assert loaded_record == record
    latents = torch.randn(2, 128)
    torch.testing.assert_close(loaded(latents), generator(latents), atol=2e-2, rtol=0)
