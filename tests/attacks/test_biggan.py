"""BigGAN as a staged generator: loaded from a pytorch-pretrained-biggan folder, its stages
composing to the package's own forward, and GIFD searching it."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import torch
from pytorch_pretrained_biggan import BigGAN
from torch.nn import functional

from attacks import GradientInversion, get_preset
from attacks.generators import BigGANStages, generator_for, load_biggan
from fedsim.data import get_dataset_spec
from fedsim.errors import FedleakError, UserInputError
from fedsim.fedsgd import fedsgd_observation
from fedsim.models import ModelSpec, build_model

CIFAR = get_dataset_spec("cifar10")


def _package_forward(folder: Path, latents: torch.Tensor, labels: torch.Tensor, truncation: float):
    """Images as the package itself makes them from the folder (its own loader and forward)."""
    model = BigGAN.from_pretrained(str(folder)).eval()
    one_hot = functional.one_hot(labels, model.config.num_classes).float()
    with torch.no_grad():
        return model(latents * truncation, one_hot, truncation)


@pytest.mark.parametrize("truncation", [1.0, 0.7])
def test_a_biggan_folder_loads_and_makes_the_packages_images(
    tmp_path: Path, tiny_biggan, truncation: float
) -> None:
    folder = tiny_biggan(tmp_path / "biggan")
    latents, labels = torch.randn(3, 16), torch.tensor([1, 4, 9])

    generator, record = load_biggan(folder, (3, 32, 32), truncation=truncation)
    generator.condition(labels)
    images = generator(latents)

    expected = _package_forward(folder, latents, labels, truncation)
    torch.testing.assert_close(images, expected, rtol=0, atol=1e-6)
    assert expected.std() > 0.01  # not a constant image
    assert (generator.latent_dim, generator.image_shape) == (16, (3, 32, 32))
    assert len(generator.stages) == 7  # latent, 5 residual blocks, self-attention
    assert record.folder == str(folder.resolve()) and record.num_classes == 10
    assert not any(p.requires_grad for p in generator.parameters())


def test_running_the_stages_in_sequence_is_the_full_forward(tmp_path: Path, tiny_biggan) -> None:
    generator, _ = load_biggan(tiny_biggan(tmp_path / "biggan"), (3, 32, 32), truncation=0.6)
    generator.condition(torch.tensor([0, 5, 7]))
    latents = torch.randn(3, generator.latent_dim)

    full = generator(latents)

    assert full.shape == (3, 3, 32, 32)
    for stage in range(len(generator.stages)):
        resumed = generator.from_stage(stage, generator.stage_input(stage, latents))
        assert torch.equal(resumed, full), stage


def test_a_later_stage_holds_the_condition_fixed(tmp_path: Path, tiny_biggan) -> None:
    generator, _ = load_biggan(tiny_biggan(tmp_path / "biggan"), (3, 32, 32))
    generator.condition(torch.tensor([2]))
    features = generator.stage_input(2, torch.randn(1, 16)).requires_grad_(True)

    generator.from_stage(2, features).sum().backward()

    size = features.shape[1] - 2 * generator.latent_dim  # the rest: latent ⊕ class embedding
    assert features.grad[:, :size].abs().sum() > 0
    assert torch.equal(features.grad[:, size:], torch.zeros(1, 2 * generator.latent_dim))


def test_generator_for_downsamples_a_larger_biggan_and_refuses_other_shapes(
    tmp_path: Path, tiny_biggan
) -> None:
    folder = tiny_biggan(tmp_path / "biggan64", side=64)
    latents, labels = torch.randn(2, 16), torch.tensor([3, 8])

    generator, record = generator_for("cifar10", (3, 32, 32), folder)
    generator.condition(labels)

    native = _package_forward(folder, latents, labels, 1.0)
    torch.testing.assert_close(
        generator(latents), functional.avg_pool2d(native, 2), rtol=0, atol=1e-6
    )
    assert (record.native_shape, record.image_shape) == ((3, 64, 64), (3, 32, 32))
    for shape in [(1, 28, 28), (3, 128, 128)]:
        with pytest.raises(UserInputError, match=r"makes \(3, 64, 64\) images.*takes"):
            generator_for("mnist", shape, folder)


def test_gifd_searches_a_biggan_conditioned_on_the_strategys_labels(
    tmp_path: Path, tiny_biggan
) -> None:
    generator, _ = load_biggan(tiny_biggan(tmp_path / "biggan"), (3, 32, 32))
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    torch.manual_seed(0)
    observation, truth = fedsgd_observation(
        build_model(spec),
        spec,
        CIFAR,
        torch.rand(2, 3, 32, 32),
        torch.tensor([3, 7]),
        grant_labels=True,
    )
    stages = len(generator.stages)

    config = get_preset("gifd", iterations=stages, restarts=2, label_strategy="given")
    reconstruction = GradientInversion(config, generator=generator)(observation)

    assert reconstruction.iterations == stages  # one step per stage
    assert reconstruction.images.shape == truth.images.shape
    assert reconstruction.images.isfinite().all()
    assert reconstruction.images.min() >= 0 and reconstruction.images.max() <= 1
    distances = reconstruction.config["stage_distances"]  # each stage's best restart
    assert len(distances) == stages
    assert reconstruction.config["best_stage"] == distances.index(min(distances))
    assert reconstruction.gradient_distance == min(distances)
    assert reconstruction.labels.tolist() == [3, 7]
    assert generator.stages[0].class_vectors.argmax(-1).tolist() == [3, 7]


def test_a_class_map_picks_the_generators_classes(tmp_path: Path, tiny_biggan) -> None:
    folder = tiny_biggan(tmp_path / "biggan", num_classes=20)
    model = BigGAN.from_pretrained(str(folder))
    generator = BigGANStages(model, class_map=[19, 11])
    latents = torch.randn(2, 16)

    generator.condition(torch.tensor([1, 0]))

    expected = _package_forward(folder, latents, torch.tensor([11, 19]), 1.0)
    torch.testing.assert_close(generator(latents), expected, rtol=0, atol=1e-6)
    with pytest.raises(UserInputError, match="label 2 has no BigGAN class"):
        generator.condition(torch.tensor([2]))
    with pytest.raises(UserInputError, match="class_map entries must be BigGAN classes 0..19"):
        BigGANStages(model, class_map=[3, 20])


def test_searched_labels_cannot_condition_a_biggan(tmp_path: Path, tiny_biggan) -> None:
    generator, _ = load_biggan(tiny_biggan(tmp_path / "biggan"), (3, 32, 32))
    spec = ModelSpec("lenet", 10, CIFAR.image_shape)
    observation, _ = fedsgd_observation(
        build_model(spec), spec, CIFAR, torch.rand(1, 3, 32, 32), torch.tensor([1])
    )

    config = get_preset("gifd", iterations=1, label_strategy="optimize")
    with pytest.raises(UserInputError, match="class-conditional generator needs them"):
        GradientInversion(config, generator=generator)(observation)


def test_a_folder_whose_weights_do_not_fit_is_refused(tmp_path: Path, tiny_biggan) -> None:
    folder = tiny_biggan(tmp_path / "biggan")
    other = tiny_biggan(tmp_path / "other", side=64)
    (folder / "pytorch_model.bin").write_bytes((other / "pytorch_model.bin").read_bytes())

    with pytest.raises(UserInputError, match="cannot read BigGAN folder .*state_dict"):
        load_biggan(folder, (3, 32, 32))
    (folder / "pytorch_model.bin").unlink()
    with pytest.raises(UserInputError, match="has config.json but no pytorch_model.bin"):
        load_biggan(folder, (3, 32, 32))


def test_without_the_package_a_biggan_folder_is_one_clear_error(
    tmp_path: Path, tiny_biggan, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = tiny_biggan(tmp_path / "biggan")
    monkeypatch.setitem(sys.modules, "pytorch_pretrained_biggan", None)  # import fails

    with pytest.raises(FedleakError, match=r"pip install 'fedleak\[biggan\]'") as caught:
        generator_for("cifar10", (3, 32, 32), folder)
    assert "\n" not in str(caught.value)
