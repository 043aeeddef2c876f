"""The model registry: names the CLI, benchmark and viewer share, and validated construction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.convnet import ConvNet64
from fedsim.models.fusion import SHIPPED_CHECKPOINTS, load_fusion
from fedsim.models.lenet import LeNet
from fedsim.models.mlp import MLP
from fedsim.models.resnet import ResNet18
from fedsim.models.vit import ViTSmall


@dataclass(frozen=True)
class ModelSpec:
    """What to build: registry name, number of classes, input shape (C, H, W), dropout rate.

    ``dp_compatible`` swaps the layers Opacus cannot compute per-sample gradients for
    (BatchNorm → GroupNorm) with ``opacus.validators.ModuleValidator.fix``, as a client
    training with DP-SGD must; the server and the attacker then build the same model.
    """

    name: str
    num_classes: int
    image_shape: tuple[int, int, int]
    dropout: float = 0.0
    dp_compatible: bool = False


@dataclass(frozen=True)
class _Architecture:
    """How to build one registered model and whether it has dropout layers."""

    build: Callable[[ModelSpec], nn.Module]
    has_dropout: bool


def _build_fusion(spec: ModelSpec) -> nn.Module:
    """The two-stream model on the shipped frozen CIFAR-10 trunks, its heads fresh."""
    if spec.num_classes != 10 or spec.image_shape != (3, 32, 32):
        raise UserInputError(
            f"model 'fusion' has CIFAR-10 trunks: needs 10 classes and (3, 32, 32) images; got "
            f"{spec.num_classes} classes, {spec.image_shape}"
        )
    if spec.dp_compatible:
        raise UserInputError(
            "model 'fusion' cannot be made DP-compatible: swapping its frozen trunks' BatchNorm "
            "for GroupNorm would discard their trained weights"
        )
    return load_fusion(SHIPPED_CHECKPOINTS, heads_file=None).train()


_REGISTRY: dict[str, _Architecture] = {
    "lenet": _Architecture(lambda s: LeNet(s.image_shape, s.num_classes), has_dropout=False),
    "convnet64": _Architecture(
        lambda s: ConvNet64(s.image_shape, s.num_classes, s.dropout), has_dropout=True
    ),
    "resnet18": _Architecture(lambda s: ResNet18(s.image_shape, s.num_classes), has_dropout=False),
    "mlp": _Architecture(lambda s: MLP(s.image_shape, s.num_classes, s.dropout), has_dropout=True),
    "vit-small": _Architecture(
        lambda s: ViTSmall(s.image_shape, s.num_classes, s.dropout), has_dropout=True
    ),
    "fusion": _Architecture(_build_fusion, has_dropout=False),
}


def model_names() -> list[str]:
    """Return every registered model name, sorted."""
    return sorted(_REGISTRY)


def _architecture(name: str) -> _Architecture:
    """Look a model up by name, raising UnknownNameError with the valid names."""
    if name not in _REGISTRY:
        raise UnknownNameError("model", name, _REGISTRY)
    return _REGISTRY[name]


def has_dropout(name: str) -> bool:
    """Return whether the named model has nn.Dropout layers that ``ModelSpec.dropout`` sets."""
    return _architecture(name).has_dropout


def build_model(spec: ModelSpec) -> nn.Module:
    """Build the model a spec names, in training mode with freshly initialised parameters."""
    architecture = _architecture(spec.name)
    if spec.num_classes < 1:
        raise UserInputError(f"num_classes must be at least 1; got {spec.num_classes}")
    if len(spec.image_shape) != 3 or min(spec.image_shape) < 1:
        raise UserInputError(
            f"image_shape must be three positive ints (C, H, W); got {spec.image_shape}"
        )
    if not 0.0 <= spec.dropout < 1.0:
        raise UserInputError(f"dropout must be in [0, 1); got {spec.dropout}")
    if spec.dropout > 0.0 and not architecture.has_dropout:
        with_dropout = ", ".join(name for name in model_names() if has_dropout(name))
        raise UserInputError(
            f"model {spec.name!r} has no dropout layers, so dropout={spec.dropout} cannot apply; "
            f"models with dropout: {with_dropout}"
        )
    model = architecture.build(spec)
    if spec.dp_compatible:
        from opacus.validators import ModuleValidator

        model = ModuleValidator.fix(model)
    return model


def needs_dp_fix(name: str) -> bool:
    """Return whether Opacus would reject the named model as built (it has BatchNorm)."""
    from opacus.validators import ModuleValidator

    spec = ModelSpec(name, 10, (3, 32, 32))
    return not ModuleValidator.is_valid(build_model(spec))


def count_parameters(model: nn.Module) -> int:
    """Return the number of trainable (requires_grad) parameter elements."""
    return sum(parameter.numel() for parameter in model.parameters() if parameter.requires_grad)
