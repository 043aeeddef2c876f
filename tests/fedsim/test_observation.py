"""Observation and GroundTruth files: exact round trips, and no secret in what the server keeps."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors import safe_open

from fedsim.errors import UserInputError
from fedsim.ground_truth import GroundTruth
from fedsim.observation import Observation


def test_observation_round_trip(tmp_path: Path, synthetic_observation) -> None:
    observation, _ = synthetic_observation("convnet64", [1, 2], grant_labels=True)
    observation.save(tmp_path / "obs.safetensors")

    loaded = Observation.load(tmp_path / "obs.safetensors")

    assert loaded.model == observation.model and loaded.mean == observation.mean
    assert loaded.parameter_names() == observation.parameter_names()
    for name, tensor in observation.client_update.items():
        assert torch.equal(loaded.client_update[name], tensor)
    for name, tensor in observation.global_state.items():
        assert torch.equal(loaded.global_state[name], tensor)
    assert torch.equal(loaded.labels, observation.labels)


def test_saved_observation_holds_no_ground_truth(tmp_path: Path, synthetic_observation) -> None:
    observation, truth = synthetic_observation("lenet", [4, 4])
    observation.save(tmp_path / "obs.safetensors")

    with safe_open(str(tmp_path / "obs.safetensors"), framework="pt") as handle:
        keys = list(handle.keys())
        tensors = [handle.get_tensor(k) for k in keys]
    assert not any(k.startswith(("images", "labels")) for k in keys)
    assert not any(t.shape == truth.images.shape for t in tensors)


def test_one_step_weights_give_back_the_gradient(synthetic_observation) -> None:
    observation, _ = synthetic_observation("lenet", [7])
    returned = {
        n: observation.global_state[n] - observation.lr * g
        for n, g in observation.client_update.items()
    }
    as_weights = replace(observation, client_update=returned, update_kind="weights")

    for name, gradient in observation.gradient().items():
        torch.testing.assert_close(as_weights.gradient()[name], gradient, atol=1e-6, rtol=1e-4)


def test_ground_truth_round_trip(tmp_path: Path) -> None:
    truth = GroundTruth(torch.rand(2, 3, 4, 4), torch.tensor([1, 2]), (10, 20))
    truth.save(tmp_path / "gt.safetensors")

    loaded = GroundTruth.load(tmp_path / "gt.safetensors")

    assert torch.equal(loaded.images, truth.images) and loaded.indices == (10, 20)


def test_missing_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no such file"):
        Observation.load(tmp_path / "absent.safetensors")
