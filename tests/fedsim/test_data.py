"""Dataset registry, source resolution (Parquet, hub, image folder, embedded) and normalisation."""

from __future__ import annotations

import re
from pathlib import Path

import datasets
import numpy as np
import pyarrow.parquet as pq
import pytest
import torch
from PIL import Image

from fedsim.data import (
    DATA_DIR_ENV,
    dataset_names,
    denormalize,
    get_dataset_spec,
    load_dataset,
    normalize,
    sources,
)
from fedsim.errors import DataUnavailableError, UnknownNameError, UserInputError
from fedsim.network import why_unreachable


@pytest.fixture
def offline_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the hub look unreachable, whatever the network, so no test downloads anything."""
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(sources, "why_unreachable", lambda host, port: f"{host} blocked by test")


@pytest.fixture
def no_local_data(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch, offline_hub: None
) -> None:
    """Point FEDLEAK_DATA_DIR at an empty folder and block the hub."""
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path_factory.mktemp("empty-data-dir")))


def test_registry_names_and_unknown_name() -> None:
    assert dataset_names() == ["cifar10", "mnist", "mnist-rgb32"]
    assert get_dataset_spec("mnist").image_shape == (1, 28, 28)
    assert get_dataset_spec("cifar10").num_classes == 10
    with pytest.raises(UnknownNameError, match="cifar10, mnist, mnist-rgb32"):
        get_dataset_spec("svhn")


def test_mnist_rgb32_is_a_view_of_mnist_shaped_and_normalised_like_cifar10() -> None:
    view, mnist, cifar = (get_dataset_spec(n) for n in ("mnist-rgb32", "mnist", "cifar10"))

    assert (view.view_of, view.source_name, mnist.view_of) == ("mnist", "mnist", None)
    assert (view.image_shape, view.mean, view.std) == (cifar.image_shape, cifar.mean, cifar.std)
    assert (view.class_names, view.hf_id) == (mnist.class_names, mnist.hf_id)


def test_mnist_rgb32_serves_mnists_images_as_rgb_32(data_dir: Path) -> None:
    view, mnist = load_dataset("mnist-rgb32", "test"), load_dataset("mnist", "test")
    indices = [0, 1, 4321, 9999]

    images, labels = view.images(indices)
    originals, original_labels = mnist.images(indices)

    assert view.source == f"local parquet {data_dir / 'mnist' / 'test.parquet'}"
    assert len(view) == len(mnist) == 10_000
    assert images.shape == (4, 3, 32, 32) and images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert torch.equal(images[:, 0], images[:, 1]) and torch.equal(images[:, 1], images[:, 2])
    assert torch.equal(labels, original_labels)
    assert torch.equal(view.labels(), mnist.labels())
    resized = torch.nn.functional.interpolate(
        originals, size=(32, 32), mode="bilinear", antialias=True, align_corners=False
    )
    torch.testing.assert_close(images[:, :1], resized.clamp(0, 1), rtol=0, atol=1e-6)


def test_a_view_reads_its_base_datasets_other_sources(tmp_path: Path, no_local_data: None) -> None:
    (tmp_path / "7").mkdir()
    Image.new("L", (28, 28), 255).save(tmp_path / "7" / "white.png")

    folder_images, labels = load_dataset("mnist-rgb32", "test", image_folder=tmp_path).images([0])
    embedded = load_dataset("mnist-rgb32", "test", allow_embedded=True)

    assert folder_images.shape == (1, 3, 32, 32) and torch.all(folder_images == 1.0)
    assert labels.tolist() == [7]
    assert len(embedded) == 20 and embedded.images([0])[0].shape == (1, 3, 32, 32)
    assert embedded.images([0])[1].tolist() == [7]  # as mnist's first embedded sample


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_local_parquet_test_split(data_dir: Path, name: str) -> None:
    spec = get_dataset_spec(name)

    dataset = load_dataset(name, "test")
    images, labels = dataset.images([0, 1, 9999])

    assert dataset.source == f"local parquet {data_dir / name / 'test.parquet'}"
    assert len(dataset) == 10_000
    assert images.shape == (3, *spec.image_shape)
    assert images.dtype == torch.float32
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.max() > 0.5
    assert labels.dtype == torch.long
    assert torch.equal(labels, dataset.labels()[[0, 1, 9999]])


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_local_parquet_class_names_match_registry(data_dir: Path, name: str) -> None:
    spec = get_dataset_spec(name)
    features = datasets.Features.from_arrow_schema(pq.read_schema(data_dir / name / "test.parquet"))

    assert tuple(features[spec.label_column].names) == spec.class_names


def test_labels_cover_all_rows_and_classes(data_dir: Path) -> None:
    labels = load_dataset("mnist", "test").labels()

    assert labels.shape == (10_000,) and labels.dtype == torch.long
    assert torch.equal(labels.unique(), torch.arange(10))


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_normalisation_constants_fit_real_pixels(data_dir: Path, name: str) -> None:
    spec = get_dataset_spec(name)
    images, _ = load_dataset(name, "test").images(range(0, 10_000, 10))

    normalized = normalize(images, spec)

    assert normalized.mean(dim=(0, 2, 3)).abs().max() < 0.05
    assert (normalized.std(dim=(0, 2, 3)) - 1).abs().max() < 0.05


def test_image_folder_source(tmp_path: Path, no_local_data: None) -> None:
    rng = np.random.default_rng(0)
    cat = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    truck = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    (tmp_path / "cat").mkdir()
    (tmp_path / "9").mkdir()
    Image.fromarray(cat).save(tmp_path / "cat" / "a.png")
    Image.fromarray(truck).save(tmp_path / "9" / "b.PNG")
    (tmp_path / "9" / "notes.txt").write_text("not an image")

    dataset = load_dataset("cifar10", "train", image_folder=tmp_path)
    images, labels = dataset.images([0, 1])

    assert dataset.source == f"image folder {tmp_path}"
    assert len(dataset) == 2
    assert labels.tolist() == [9, 3]  # folders sorted by name: "9" before "cat"
    assert torch.equal(dataset.labels(), labels)
    assert torch.equal(images[0], torch.from_numpy(truck).permute(2, 0, 1) / 255.0)
    assert torch.equal(images[1], torch.from_numpy(cat).permute(2, 0, 1) / 255.0)


def test_image_folder_converts_to_the_dataset_channels(tmp_path: Path, no_local_data: None) -> None:
    (tmp_path / "7").mkdir()
    Image.new("RGB", (28, 28), (255, 255, 255)).save(tmp_path / "7" / "white.png")

    images, labels = load_dataset("mnist", "test", image_folder=tmp_path).images([0])

    assert images.shape == (1, 1, 28, 28)
    assert torch.all(images == 1.0)
    assert labels.tolist() == [7]


def test_image_folder_unknown_class_is_a_user_error(tmp_path: Path, no_local_data: None) -> None:
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "cats" / "a.png")

    with pytest.raises(UserInputError, match="'.*cats'.*airplane"):
        load_dataset("cifar10", "test", image_folder=tmp_path)


@pytest.mark.parametrize(("name", "first_labels"), [("cifar10", [3, 8, 8]), ("mnist", [7, 2, 1])])
def test_embedded_fallback(no_local_data: None, name: str, first_labels: list[int]) -> None:
    spec = get_dataset_spec(name)

    dataset = load_dataset(name, "test", allow_embedded=True)
    images, labels = dataset.images(range(len(dataset)))

    assert dataset.source.startswith("embedded foolbox samples ")
    assert len(dataset) == 20
    assert images.shape == (20, *spec.image_shape)
    assert labels[:3].tolist() == first_labels  # e.g. cifar10_00_3.png, cifar10_01_8.png
    assert torch.equal(labels, dataset.labels())


def test_no_source_lists_every_source_tried(no_local_data: None) -> None:
    with pytest.raises(DataUnavailableError) as caught:
        load_dataset("cifar10", "test")

    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith("no source for cifar10/test: local parquet: ")
    assert re.search(r"empty-data-dir\d*/cifar10/test\.parquet not found; ", message)
    assert "; hub uoft-cs/cifar10: offline (huggingface.co blocked by test)" in message
    assert "; image folder: none given" in message
    assert "; embedded samples: not allowed" in message


def test_unset_data_dir_is_named(monkeypatch: pytest.MonkeyPatch, offline_hub: None) -> None:
    monkeypatch.delenv(DATA_DIR_ENV, raising=False)

    with pytest.raises(DataUnavailableError, match=f"local parquet: {DATA_DIR_ENV} not set"):
        load_dataset("mnist", "train")


def test_probe_answers_quickly_for_a_closed_port() -> None:
    assert "unreachable" in why_unreachable("127.0.0.1", 9, timeout_s=1.0)


def test_bad_split_is_a_user_error() -> None:
    with pytest.raises(UserInputError, match="'validation'.*train, test"):
        load_dataset("mnist", "validation")


def test_out_of_range_index_names_index_and_range(data_dir: Path) -> None:
    dataset = load_dataset("mnist", "test")

    with pytest.raises(UserInputError, match=r"index 10000 .*mnist/test.*0\.\.9999"):
        dataset.images([0, 10_000])
    with pytest.raises(UserInputError, match="index -1"):
        dataset.images([-1])


@pytest.mark.parametrize("name", ["cifar10", "mnist"])
def test_denormalize_inverts_normalize(name: str) -> None:
    spec = get_dataset_spec(name)
    images = torch.rand(4, *spec.image_shape)

    assert torch.allclose(denormalize(normalize(images, spec), spec), images, atol=1e-6)
    assert torch.allclose(normalize(images[0], spec), normalize(images, spec)[0])


def test_normalize_rejects_wrong_channel_count() -> None:
    with pytest.raises(UserInputError, match="mnist"):
        normalize(torch.rand(2, 3, 28, 28), get_dataset_spec("mnist"))
