"""Shared fixtures: the real offline datasets, found through FEDLEAK_DATA_DIR."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
import torch

from fedsim.data import DATA_DIR_ENV, get_dataset_spec
from fedsim.fedsgd import fedsgd_observation
from fedsim.ground_truth import GroundTruth
from fedsim.models import ModelSpec, build_model
from fedsim.observation import Observation


@pytest.fixture
def data_dir() -> Path:
    """The folder of offline Parquet datasets; skips the test when FEDLEAK_DATA_DIR is unset."""
    root = os.environ.get(DATA_DIR_ENV)
    if not root:
        pytest.skip(f"{DATA_DIR_ENV} is not set; point it at the offline datasets (shared/data)")
    return Path(root)


def _synthetic_observation(
    model_name: str,
    labels: list[int],
    *,
    dataset: str = "cifar10",
    grant_labels: bool = False,
    train_mode: bool = False,
    seed: int = 0,
) -> tuple[Observation, GroundTruth]:
    """A FedSGD observation of random [0, 1] images with the given labels on a fresh model."""
    spec = get_dataset_spec(dataset)
    torch.manual_seed(seed)
    model_spec = ModelSpec(model_name, spec.num_classes, spec.image_shape)
    images = torch.rand(len(labels), *spec.image_shape)
    return fedsgd_observation(
        build_model(model_spec),
        model_spec,
        spec,
        images,
        torch.tensor(labels),
        train_mode=train_mode,
        grant_labels=grant_labels,
    )


@pytest.fixture
def synthetic_observation() -> Callable[..., tuple[Observation, GroundTruth]]:
    """Factory: ``synthetic_observation(model_name, labels, dataset=, grant_labels=, ...)``."""
    return _synthetic_observation
