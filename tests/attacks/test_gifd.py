"""GIFD's parts: staged generators, the l1-ball projection, and searches that find a target
the generator itself produced."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

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


def _conditional_generator(image_shape: tuple[int, int, int]) -> StagedGenerator:
    """A class-conditional generator whose class scales and shifts differ (they start equal)."""
    torch.manual_seed(0)
    generator = StagedGenerator(image_shape, num_classes=10)
    for name, weight in generator.named_parameters():
        if name.endswith(("scale.weight", "shift.weight")):
            torch.nn.init.normal_(weight, 1.0 if "scale" in name else 0.0, 0.5)
    return generator.eval().requires_grad_(False)


def test_a_conditional_generators_stages_reproduce_its_forward_per_class() -> None:
    generator = _conditional_generator((3, 32, 32))
    latents = torch.randn(3, generator.latent_dim)
    generator.condition(torch.tensor([0, 1, 2]))

    full = generator(latents)

    for stage in range(len(generator.stages)):
        resumed = generator.from_stage(stage, generator.stage_input(stage, latents))
        assert torch.equal(resumed, full), stage
    generator.condition(torch.tensor([0, 1, 7]))  # only the last image changes class
    other = generator(latents)
    assert torch.equal(other[:2], full[:2])
    assert (other[2] - full[2]).abs().mean() > 0.05


def test_a_conditional_generator_refuses_missing_or_unknown_classes() -> None:
    generator = _conditional_generator((1, 28, 28))

    with pytest.raises(UserInputError, match=r"needs condition\(labels\) for its 2 images"):
        generator(torch.randn(2, generator.latent_dim))
    with pytest.raises(UserInputError, match=r"labels must be classes 0..9; got \[3, 10\]"):
        generator.condition(torch.tensor([3, 10]))
    with pytest.raises(UserInputError, match="not class-conditional"):
        StagedGenerator((1, 28, 28)).condition(torch.tensor([0]))


def test_gifd_conditions_the_generator_on_the_label_strategys_labels() -> None:
    generator = _conditional_generator(CIFAR.image_shape)
    generator.condition(torch.tensor([2]))
    target = (generator(torch.randn(1, generator.latent_dim)) + 1) / 2
    generator.condition(torch.tensor([5]))  # the attack must set the class itself
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    observation, truth = fedsgd_observation(
        build_model(spec), spec, CIFAR, target, torch.tensor([2])
    )

    config = get_preset("gifd", iterations=300, restarts=2, label_strategy="idlg")
    reconstruction = GradientInversion(config, generator=generator)(observation)

    assert generator.stages[0][2].labels.tolist() == [2]
    assert psnr(reconstruction.images, truth.images).item() > 30


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


def test_a_pixel_stage_goes_on_from_the_generators_output_to_an_image_it_cannot_make() -> None:
    torch.manual_seed(0)
    generator = StagedGenerator(CIFAR.image_shape).eval().requires_grad_(False)  # untrained
    target = torch.rand(1, 1, 8, 8).repeat(1, 3, 4, 4)  # blocks no untrained generator makes
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    observation, _ = fedsgd_observation(build_model(spec), spec, CIFAR, target, torch.tensor([2]))

    config = get_preset("gifd-pixels", iterations=250, restarts=1)
    reconstruction = GradientInversion(config, generator=generator)(observation)

    *stages, pixels = reconstruction.config["stage_distances"]
    assert len(stages) == len(generator.stages)
    assert reconstruction.config["best_stage"] == len(generator.stages)
    assert pixels < stages[-1] / 2  # the pixels fit what the generator's stages could not
    assert reconstruction.gradient_distance == pixels
    assert reconstruction.iterations == 250


def test_the_last_stage_can_take_a_larger_share_of_the_budget() -> None:
    torch.manual_seed(0)
    generator = StagedGenerator(CIFAR.image_shape).eval().requires_grad_(False)
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    target = torch.rand(1, *CIFAR.image_shape)
    observation, _ = fedsgd_observation(build_model(spec), spec, CIFAR, target, torch.tensor([2]))
    earlier = len(generator.stages) - 1

    config = get_preset("gifd", iterations=10 * (earlier + 5), restarts=1, last_stage_share=None)
    equal = GradientInversion(config, generator=generator)(observation)
    config = config.model_copy(update={"last_stage_share": 5 / (earlier + 5)})
    weighted = GradientInversion(config, generator=generator)(observation)

    assert len(set(equal.config["stage_iterations"])) == 1
    assert weighted.config["stage_iterations"] == [10] * earlier + [50]
    assert weighted.iterations == equal.iterations == 10 * (earlier + 5)


@pytest.mark.parametrize("option", [{"pixel_stage": True}, {"last_stage_share": 0.5}])
def test_stage_options_without_a_generator_are_refused(option: dict) -> None:
    with pytest.raises(ValidationError, match=f"{next(iter(option))} applies to a generator's"):
        get_preset("ig-fast", **option)


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


def test_a_conditional_checkpoint_loads_conditional(tmp_path) -> None:
    generator = _conditional_generator((1, 28, 28))
    record = GeneratorRecord(
        "mnist", (1, 28, 28), 128, (0, 1), 1, 0, "fedleak train-generator", num_classes=10
    )
    save_generator(tmp_path / "g.safetensors", generator, record)

    loaded, loaded_record = load_generator(tmp_path / "g.safetensors")

    assert loaded.conditional and loaded_record.num_classes == 10
    latents = torch.randn(2, 128)
    for model in (loaded, generator):
        model.condition(torch.tensor([1, 8]))
    torch.testing.assert_close(loaded(latents), generator(latents), atol=2e-2, rtol=0)


def test_the_ceiling_reaches_images_the_generator_made_within_gifds_constraints() -> None:
    from attacks.generators.ceiling import fit_stages

    generator = _conditional_generator((1, 28, 28))
    labels = torch.tensor([3, 8])
    generator.condition(labels)
    targets = (generator(torch.randn(2, generator.latent_dim)) + 1) / 2

    fits = fit_stages(generator, targets, labels, steps=150, restarts=2)

    assert [fit.stage for fit in fits] == list(range(len(generator.stages)))
    assert all(fit.images.shape == targets.shape for fit in fits)
    assert min(fits[-1].psnr) > 35
    for earlier, later in zip(fits, fits[1:], strict=False):  # a stage starts where the last ended
        assert all(b >= a for a, b in zip(earlier.psnr, later.psnr, strict=True))
    with pytest.raises(ValueError, match="needs the images' labels"):
        fit_stages(generator, targets, steps=1)
