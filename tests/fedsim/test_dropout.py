"""Dropout that remembers: the client's masks are recorded as ground truth and replay exactly."""

from __future__ import annotations

import pytest
import torch

from fedsim.data import get_dataset_spec, normalize
from fedsim.fedsgd import client_gradient, fedsgd_observation
from fedsim.ground_truth import GroundTruth
from fedsim.models import ModelSpec, build_model
from fedsim.models.dropout import (
    MaskedDropout,
    client_mode,
    dropout_layers,
    plugged_masks,
    recording_masks,
)
from fedsim.storage import load_tensors

CIFAR = get_dataset_spec("cifar10")
RATE = 0.25


def _observed(model_name: str, batch: int = 2):
    torch.manual_seed(0)
    spec = ModelSpec(model_name, 10, CIFAR.image_shape, RATE)
    images, labels = torch.rand(batch, *CIFAR.image_shape), torch.arange(batch)
    return fedsgd_observation(build_model(spec), spec, CIFAR, images, labels)


@pytest.mark.parametrize(
    ("model_name", "layers"),
    [("mlp", 3), ("convnet64", 1), ("vit-small", 1 + 4 * 4)],
)
def test_every_dropout_layer_records_one_mask_per_image(model_name: str, layers: int) -> None:
    observation, truth = _observed(model_name, batch=2)

    assert len(truth.dropout_masks) == layers
    for mask in truth.dropout_masks.values():
        assert mask.dtype == torch.bool and mask.shape[0] == 2
    kept = torch.cat([m.flatten().float() for m in truth.dropout_masks.values()]).mean()
    assert abs(kept.item() - (1 - RATE)) < 0.02


@pytest.mark.parametrize("model_name", ["mlp", "convnet64", "vit-small"])
def test_recorded_masks_replay_the_clients_gradient_exactly(model_name: str) -> None:
    observation, truth = _observed(model_name)
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    model.eval()  # the attacker's view: dropout off unless masks are plugged in

    with plugged_masks(model, {n: m.float() for n, m in truth.dropout_masks.items()}):
        named = dict(model.named_parameters())
        loss = torch.nn.functional.cross_entropy(
            model(normalize(truth.images, CIFAR)), truth.labels
        )
        replayed = dict(zip(named, torch.autograd.grad(loss, list(named.values())), strict=True))

    for name, gradient in observation.client_update.items():
        torch.testing.assert_close(replayed[name], gradient, rtol=1e-5, atol=1e-7)


def test_masks_stay_in_the_ground_truth_file_and_out_of_the_observation(tmp_path) -> None:
    observation, truth = _observed("mlp")
    observation.save(tmp_path / "observation.safetensors")
    truth.save(tmp_path / "truth.safetensors")

    saved_observation, meta = load_tensors(tmp_path / "observation.safetensors")
    assert not any("mask" in key for key in [*saved_observation, *map(str, meta.values())])
    loaded = GroundTruth.load(tmp_path / "truth.safetensors")
    assert loaded.dropout_masks.keys() == truth.dropout_masks.keys()
    for name, mask in truth.dropout_masks.items():
        assert torch.equal(loaded.dropout_masks[name], mask)


def test_client_mode_keeps_batch_norm_in_eval_while_dropout_draws() -> None:
    model = build_model(ModelSpec("convnet64", 10, CIFAR.image_shape, RATE))

    client_mode(model, train_mode=False)

    assert all(layer.training for layer in dropout_layers(model).values())
    batch_norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert batch_norms and not any(m.training for m in batch_norms)


def test_no_masks_without_dropout() -> None:
    model = build_model(ModelSpec("mlp", 10, CIFAR.image_shape, 0.0))

    with recording_masks(model) as masks:
        client_gradient(
            model, torch.randn(2, *CIFAR.image_shape), torch.tensor([0, 1]), train_mode=True
        )

    assert masks == {}


def test_a_plugged_mask_applies_in_eval_and_scales_by_the_keep_rate() -> None:
    layer = MaskedDropout(0.5).eval()
    x, mask = torch.ones(1, 4), torch.tensor([[1.0, 0.0, 0.5, 1.0]])

    with plugged_masks(torch.nn.Sequential(layer), {"0": mask}):
        out = layer(x)

    assert out.tolist() == [[2.0, 0.0, 1.0, 2.0]]
    assert torch.equal(layer(x), x)  # unplugged again on exit


def test_plugging_an_unknown_layer_is_refused() -> None:
    model = build_model(ModelSpec("mlp", 10, CIFAR.image_shape, RATE))

    with pytest.raises(KeyError, match="no dropout layer named"):
        plugged_masks(model, {"x": torch.ones(1)}).__enter__()
