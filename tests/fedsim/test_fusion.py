"""The two-stream fusion model: heads, streams, the context view, state, backbone loading."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torchvision.models import resnet18

from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.fusion import (
    HEADS,
    ContextualFusion,
    cifar_trunk,
    context_mask,
    load_imagenet_trunk,
    load_places365_trunk,
)

WIDTH = 4  # a tiny trunk: 32-d features


@pytest.fixture
def model() -> ContextualFusion:
    torch.manual_seed(0)
    return ContextualFusion(cifar_trunk(WIDTH), cifar_trunk(WIDTH), 8 * WIDTH).eval()


def test_heads_shapes(model: ContextualFusion) -> None:
    object_features, context_features = model.features(torch.randn(5, 3, 32, 32))
    logits = model.head_logits(object_features, context_features)

    assert object_features.shape == context_features.shape == (5, 32)
    assert {name: tuple(value.shape) for name, value in logits.items()} == {
        name: (5, 10) for name in HEADS
    }
    assert model.heads["fused"].weight.shape == (10, 64)


def test_fused_head_reads_both_streams(model: ContextualFusion) -> None:
    object_features, context_features = model.features(torch.randn(4, 3, 32, 32))
    both = model.head_logits(object_features, context_features)
    no_context = model.head_logits(object_features, torch.zeros_like(context_features))
    no_object = model.head_logits(torch.zeros_like(object_features), context_features)

    assert not torch.allclose(no_context["fused"], both["fused"])
    assert not torch.allclose(no_object["fused"], both["fused"])
    torch.testing.assert_close(no_context["object"], both["object"])
    torch.testing.assert_close(no_object["context"], both["context"])


def test_context_view_hides_the_centre_from_gradients(model: ContextualFusion) -> None:
    images = torch.randn(2, 3, 32, 32, requires_grad=True)
    model.logits(images, "context").sum().backward()
    mask = context_mask(32, 32).bool().expand_as(images)

    assert context_mask(32, 32)[0, 0, 8:24, 8:24].sum() == 0
    assert context_mask(32, 32).sum() == 32 * 32 - 16 * 16
    assert images.grad[~mask].abs().max() == 0
    assert images.grad[mask].abs().sum() > 0


def test_state_holds_only_the_heads_and_only_the_evaluated_head_trains(
    model: ContextualFusion,
) -> None:
    state = model.state_dict()
    trainable = [name for name, p in model.named_parameters() if p.requires_grad]
    other = ContextualFusion(cifar_trunk(WIDTH), cifar_trunk(WIDTH), 8 * WIDTH)
    other.load_state_dict(state)

    assert sorted(state) == sorted(f"heads.{h}.{p}" for h in HEADS for p in ("weight", "bias"))
    assert trainable == ["heads.fused.weight", "heads.fused.bias"]
    for key, value in other.state_dict().items():
        torch.testing.assert_close(value, state[key])


def test_train_mode_keeps_trunks_frozen(model: ContextualFusion) -> None:
    model.train()

    assert model.heads.training
    assert not model.object_stream.training and not model.context_stream.training


def test_unknown_head_names_the_valid_ones() -> None:
    with pytest.raises(UnknownNameError, match="valid: context, fused, object"):
        ContextualFusion(cifar_trunk(WIDTH), cifar_trunk(WIDTH), 8 * WIDTH, head="scene")


def _features(network: torch.nn.Module, images: torch.Tensor) -> torch.Tensor:
    network.fc = torch.nn.Identity()
    return network.eval()(images)


def test_loads_torchvision_imagenet_layout(tmp_path: Path) -> None:
    torch.manual_seed(1)
    reference = resnet18(num_classes=1000)
    torch.save(reference.state_dict(), tmp_path / "resnet18-imagenet.pth")
    images = torch.randn(2, 3, 64, 64)

    trunk = load_imagenet_trunk(tmp_path / "resnet18-imagenet.pth").eval()

    torch.testing.assert_close(trunk(images), _features(reference, images))


def test_loads_places365_layout_with_module_prefix(tmp_path: Path) -> None:
    torch.manual_seed(2)
    reference = resnet18(num_classes=365)
    state = {f"module.{key}": value for key, value in reference.state_dict().items()}
    torch.save({"epoch": 90, "arch": "resnet18", "state_dict": state}, tmp_path / "places.pth.tar")
    images = torch.randn(2, 3, 64, 64)

    trunk = load_places365_trunk(tmp_path / "places.pth.tar").eval()
    fused = ContextualFusion(resnet18_trunk(), trunk, 512, image_size=(64, 64)).eval()

    torch.testing.assert_close(trunk(images), _features(reference, images))
    assert fused(images).shape == (2, 10)


def resnet18_trunk() -> torch.nn.Module:
    network = resnet18()
    network.fc = torch.nn.Identity()
    return network


def test_missing_backbone_file_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(UserInputError, match="no checkpoint at"):
        load_places365_trunk(tmp_path / "absent.pth.tar")
