"""Tests for the model registry: shapes, parameter counts, dropout handling, double backward."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.func import functional_call, vmap

from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models import ModelSpec, build_model, count_parameters, has_dropout, model_names

CIFAR = (3, 32, 32)
MNIST = (1, 28, 28)
DROPOUT_MODELS = ["convnet64", "mlp", "vit-small"]
CIFAR_ONLY = {"fusion"}  # its shipped frozen trunks were trained on CIFAR-10


def _shapes(name: str) -> list[tuple[int, int, int]]:
    return [CIFAR] if name in CIFAR_ONLY else [CIFAR, MNIST]


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


def test_registry_lists_every_model() -> None:
    assert model_names() == ["convnet64", "fusion", "lenet", "mlp", "resnet18", "vit-small"]
    assert [name for name in model_names() if has_dropout(name)] == DROPOUT_MODELS


@pytest.mark.parametrize(
    ("name", "expected"), [("convnet64", 2_904_970), ("resnet18", 11_173_962), ("lenet", 15_826)]
)
def test_parameter_count_matches_reference(name: str, expected: int) -> None:
    model = build_model(ModelSpec(name, num_classes=10, image_shape=CIFAR))

    assert count_parameters(model) == expected


def test_count_parameters_skips_frozen() -> None:
    model = build_model(ModelSpec("lenet", num_classes=10, image_shape=CIFAR))
    model.classifier.requires_grad_(False)

    assert count_parameters(model) == 15_826 - (768 * 10 + 10)


@pytest.mark.parametrize(
    ("name", "image_shape"), [(name, shape) for name in model_names() for shape in _shapes(name)]
)
def test_forward_gives_logits(name: str, image_shape: tuple[int, int, int]) -> None:
    model = build_model(ModelSpec(name, num_classes=10, image_shape=image_shape))

    logits = model(torch.rand(2, *image_shape))

    assert logits.shape == (2, 10)
    assert torch.isfinite(logits).all()


def test_fusion_refuses_other_shapes_and_dp() -> None:
    with pytest.raises(UserInputError, match="CIFAR-10 trunks"):
        build_model(ModelSpec("fusion", num_classes=10, image_shape=MNIST))
    with pytest.raises(UserInputError, match="cannot be made DP-compatible"):
        build_model(ModelSpec("fusion", num_classes=10, image_shape=CIFAR, dp_compatible=True))


def test_lenet_weights_and_biases_are_uniform_half() -> None:
    model = build_model(ModelSpec("lenet", num_classes=10, image_shape=CIFAR))

    values = torch.cat([p.detach().flatten() for p in model.parameters()])
    assert values.abs().max() <= 0.5
    assert values.std().item() == pytest.approx(12**-0.5, abs=0.01)
    for name, parameter in model.named_parameters():
        # PyTorch's default bounds here are all below 0.12; uniform(-0.5, 0.5) reaches beyond.
        assert parameter.abs().max() > 0.2, name


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(
        UnknownNameError, match="valid: convnet64, fusion, lenet, mlp, resnet18, vit-small"
    ):
        build_model(ModelSpec("alexnet", num_classes=10, image_shape=CIFAR))
    with pytest.raises(UnknownNameError):
        has_dropout("alexnet")


@pytest.mark.parametrize("name", ["lenet", "resnet18"])
def test_dropout_on_model_without_dropout_raises(name: str) -> None:
    with pytest.raises(UserInputError, match=f"{name}.*convnet64, mlp, vit-small"):
        build_model(ModelSpec(name, num_classes=10, image_shape=CIFAR, dropout=0.1))


@pytest.mark.parametrize("dropout", [1.0, -0.1, float("nan")])
def test_dropout_outside_unit_interval_raises(dropout: float) -> None:
    with pytest.raises(UserInputError, match="dropout must be in"):
        build_model(ModelSpec("mlp", num_classes=10, image_shape=CIFAR, dropout=dropout))


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec("mlp", num_classes=0, image_shape=CIFAR),
        ModelSpec("mlp", num_classes=10, image_shape=(3, 0, 32)),
        ModelSpec("vit-small", num_classes=10, image_shape=(3, 30, 30)),
        ModelSpec("convnet64", num_classes=10, image_shape=(3, 8, 8)),
    ],
)
def test_invalid_shapes_raise(spec: ModelSpec) -> None:
    with pytest.raises(UserInputError):
        build_model(spec)


@pytest.mark.parametrize("name", DROPOUT_MODELS)
def test_dropout_rate_reaches_every_dropout_module(name: str) -> None:
    model = build_model(ModelSpec(name, num_classes=10, image_shape=CIFAR, dropout=0.3))

    rates = [module.p for module in model.modules() if isinstance(module, nn.Dropout)]

    assert rates
    assert all(rate == 0.3 for rate in rates)


def test_convnet64_keeps_dropout_layer_at_zero_rate() -> None:
    model = build_model(ModelSpec("convnet64", num_classes=10, image_shape=CIFAR))

    assert [m.p for m in model.modules() if isinstance(m, nn.Dropout)] == [0.0]


@pytest.mark.parametrize("name", model_names())
def test_double_backward_reaches_input(name: str) -> None:
    model = build_model(ModelSpec(name, num_classes=10, image_shape=CIFAR))
    images = torch.rand(2, *CIFAR, requires_grad=True)
    labels = torch.tensor([1, 7])
    parameters = [p for p in model.parameters() if p.requires_grad]

    loss = nn.functional.cross_entropy(model(images), labels)
    gradients = torch.autograd.grad(loss, parameters, create_graph=True)
    gradient_norm = sum(g.pow(2).sum() for g in gradients)
    (input_gradient,) = torch.autograd.grad(gradient_norm, images)

    assert torch.isfinite(input_gradient).all()
    assert input_gradient.abs().sum() > 0


@pytest.mark.parametrize("name", model_names())
def test_vmap_over_functional_call_matches_loop(name: str) -> None:
    shape = _shapes(name)[-1]
    model = build_model(ModelSpec(name, num_classes=10, image_shape=shape)).eval()
    state = {**dict(model.named_parameters()), **dict(model.named_buffers())}
    restarts = torch.rand(3, 2, *shape)

    batched = vmap(lambda images: functional_call(model, state, (images,)))(restarts)

    expected = torch.stack([model(images) for images in restarts])
    torch.testing.assert_close(batched, expected, rtol=1e-4, atol=1e-5)
