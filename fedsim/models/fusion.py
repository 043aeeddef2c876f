"""Contextual fusion (Akumalla et al. 2020): two frozen trunks, an object-only, a context-only
and a fused linear head over their concatenated average-pooled features.

The object trunk sees the whole image; the context trunk sees its *context view* (the central
object region set to zero, i.e. the dataset mean for normalised inputs, the periphery kept).
The view is part of :class:`ContextStream`'s forward, so gradients reach the pixels through it.
Trunks are public, frozen weights: the model's ``state_dict`` holds the heads only, so Flower
sends and averages the heads and never the trunks.

With :class:`TrunkPaths` the streams are the paper's: torchvision's ImageNet ResNet-18 and the
Places365 ResNet-18 from files users have, each reading the CIFAR image upsampled to 224 px
(:class:`TrunkInput`), the context view masked before the upsampling.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file
from torch import nn
from torch.nn import functional
from torchvision.models import resnet18

from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.resnet import ResNet18

HEADS = ("object", "context", "fused")
SHIPPED_CHECKPOINTS = Path(__file__).parent / "checkpoints" / "fusion"
"""The CIFAR-10 trunks and heads made by ``fedleak fusion train`` (commands in their metadata)."""
TRUNK_WIDTH = 16
"""Channels of the CIFAR trunks' first stage (a narrow ResNet-18: 16 to 128, 128-d features)."""
CENTRE_FRACTION = 0.5
"""Side of the masked central square, as a fraction of the image side (16×16 of 32×32)."""
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
"""The normalisation torchvision's ImageNet and the Places365 ResNet-18s were trained with."""
TORCHVISION_SIZE = 224


@dataclass(frozen=True)
class TrunkPaths:
    """Where a user keeps the paper's trunks: torchvision's ImageNet ResNet-18 state dict
    (``resnet18-*.pth``) and ``resnet18_places365.pth.tar``."""

    imagenet: Path
    places365: Path


class TrunkInput(nn.Module):
    """CIFAR-normalised images → ``size`` px, ImageNet-normalised (bilinear upsampling)."""

    def __init__(self, size: int = TORCHVISION_SIZE) -> None:
        super().__init__()
        from fedsim.data import get_dataset_spec

        spec = get_dataset_spec("cifar10")
        for name, values in (
            ("cifar_mean", spec.mean),
            ("cifar_std", spec.std),
            ("mean", IMAGENET_MEAN),
            ("std", IMAGENET_STD),
        ):
            self.register_buffer(name, torch.tensor(values).view(1, 3, 1, 1), persistent=False)
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map [N, 3, H, W] CIFAR-normalised images to [N, 3, size, size] for the trunks."""
        pixels = x * self.cifar_std + self.cifar_mean
        resized = functional.interpolate(
            pixels, size=(self.size, self.size), mode="bilinear", align_corners=False
        )
        return (resized - self.mean) / self.std


def torchvision_streams(paths: TrunkPaths) -> tuple[nn.Module, nn.Module]:
    """The object and context trunks from the user's files, each behind a :class:`TrunkInput`."""
    return (
        nn.Sequential(TrunkInput(), load_imagenet_trunk(paths.imagenet)),
        nn.Sequential(TrunkInput(), load_places365_trunk(paths.places365)),
    )


def cifar_trunk(width: int = TRUNK_WIDTH) -> ResNet18:
    """A narrow CIFAR ResNet-18 whose classifier is an identity: images → 8·width features."""
    trunk = ResNet18((3, 32, 32), 10, width=width)
    trunk.classifier = nn.Identity()
    return trunk


def torchvision_trunk(state: Mapping[str, torch.Tensor], num_classes: int) -> nn.Module:
    """A torchvision ResNet-18 loaded from ``state`` (with ``fc``), then ``fc`` dropped: 512-d."""
    trunk = resnet18(num_classes=num_classes)
    trunk.load_state_dict(state)
    trunk.fc = nn.Identity()
    return trunk


def load_imagenet_trunk(path: Path) -> nn.Module:
    """The object trunk from torchvision's ImageNet ResNet-18 state dict (``resnet18-*.pth``)."""
    return torchvision_trunk(_read_torch(path), 1000)


def load_places365_trunk(path: Path) -> nn.Module:
    """The context trunk from ``resnet18_places365.pth.tar`` (its ``module.`` prefixes stripped)."""
    checkpoint = _read_torch(path)
    state = checkpoint.get("state_dict", checkpoint)
    stripped = {key.removeprefix("module."): value for key, value in state.items()}
    return torchvision_trunk(stripped, 365)


def _read_torch(path: Path) -> dict[str, Any]:
    if not Path(path).is_file():
        raise UserInputError(f"no checkpoint at {path}; give the path of a ResNet-18 .pth file")
    return torch.load(path, map_location="cpu", weights_only=True)


def load_cifar_trunk(path: Path) -> nn.Module:
    """A CIFAR trunk saved by ``fedleak fusion train`` (a safetensors file with its width)."""
    from safetensors import safe_open

    if not Path(path).is_file():
        raise UserInputError(
            f"no trunk checkpoint at {path}; make one with `fedleak fusion train --stream ...`"
        )
    with safe_open(str(path), "pt") as handle:
        width = int((handle.metadata() or {}).get("width", TRUNK_WIDTH))
    trunk = cifar_trunk(width)
    trunk.load_state_dict({k: v.float() for k, v in load_file(str(path)).items()})
    return trunk


def context_mask(height: int, width: int, fraction: float = CENTRE_FRACTION) -> torch.Tensor:
    """A (1, 1, H, W) mask: 0 on the central ``fraction`` square, 1 on the periphery."""
    mask = torch.ones(1, 1, height, width)
    rows, cols = round(height * fraction), round(width * fraction)
    top, left = (height - rows) // 2, (width - cols) // 2
    mask[..., top : top + rows, left : left + cols] = 0.0
    return mask


class ContextStream(nn.Module):
    """A trunk that sees only the periphery: the central square is zeroed before it."""

    def __init__(self, trunk: nn.Module, image_size: tuple[int, int] = (32, 32)) -> None:
        super().__init__()
        self.trunk = trunk
        self.register_buffer("mask", context_mask(*image_size), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised images [N, C, H, W] to the trunk's features of their context view."""
        return self.trunk(x * self.mask)


class ContextualFusion(nn.Module):
    """Two frozen streams and three linear heads; ``forward`` returns the logits of ``head``.

    ``state_dict`` / ``load_state_dict`` cover the heads only (keys ``heads.<head>.*``): the
    trunks are public weights every party loads itself. Only the evaluated head is trainable,
    so every trainable parameter takes part in ``forward`` (FedSGD gradients need that).
    """

    def __init__(
        self,
        object_trunk: nn.Module,
        context_trunk: nn.Module,
        feature_dim: int,
        num_classes: int = 10,
        head: str = "fused",
        image_size: tuple[int, int] = (32, 32),
    ) -> None:
        super().__init__()
        if head not in HEADS:
            raise UnknownNameError("head", head, HEADS)
        self.object_stream = object_trunk
        self.context_stream = ContextStream(context_trunk, image_size)
        self.heads = nn.ModuleDict(
            {
                "object": nn.Linear(feature_dim, num_classes),
                "context": nn.Linear(feature_dim, num_classes),
                "fused": nn.Linear(2 * feature_dim, num_classes),
            }
        )
        self.feature_dim = feature_dim
        self.head = head
        for stream in (self.object_stream, self.context_stream):
            stream.requires_grad_(False).eval()
        for name, layer in self.heads.items():
            layer.requires_grad_(name == head)

    def train(self, mode: bool = True) -> ContextualFusion:
        """Set the heads' mode; the frozen trunks stay in eval mode (BatchNorm statistics fixed)."""
        super().train(mode)
        self.object_stream.eval()
        self.context_stream.eval()
        return self

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Object and context features [N, D] of normalised images [N, C, H, W]."""
        return self.object_stream(x), self.context_stream(x)

    def head_logits(
        self, object_features: torch.Tensor, context_features: torch.Tensor
    ) -> dict[str, torch.Tensor]:
        """Each head's logits [N, classes] from the two streams' features."""
        return {
            "object": self.heads["object"](object_features),
            "context": self.heads["context"](context_features),
            "fused": self.heads["fused"](torch.cat([object_features, context_features], dim=1)),
        }

    def logits(self, x: torch.Tensor, head: str) -> torch.Tensor:
        """The logits of one head, computing only the streams that head reads."""
        if head == "object":
            return self.heads["object"](self.object_stream(x))
        if head == "context":
            return self.heads["context"](self.context_stream(x))
        return self.heads["fused"](torch.cat(self.features(x), dim=1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map normalised images [N, C, H, W] to the logits [N, classes] of ``self.head``."""
        return self.logits(x, self.head)

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]:  # type: ignore[override]
        """The heads' parameters only, keyed ``heads.<head>.weight`` / ``.bias``."""
        kwargs.setdefault("prefix", "heads.")
        return self.heads.state_dict(*args, **kwargs)

    def load_state_dict(  # type: ignore[override]
        self, state_dict: Mapping[str, Any], strict: bool = True, assign: bool = False
    ) -> Any:
        """Load the heads from a state keyed as :meth:`state_dict` writes it."""
        heads = {key.removeprefix("heads."): value for key, value in state_dict.items()}
        return self.heads.load_state_dict(heads, strict=strict, assign=assign)


def load_fusion(
    checkpoint_dir: Path,
    head: str = "fused",
    heads_file: str | None = "heads.safetensors",
    trunks: TrunkPaths | None = None,
) -> ContextualFusion:
    """The CIFAR fusion model from a folder of ``object``, ``context`` and heads checkpoints,
    or with ``trunks`` the user's ImageNet / Places365 trunks and the folder's heads.

    ``heads_file=None`` leaves the heads freshly initialised (what Flower starts from).
    """
    folder = Path(checkpoint_dir)
    if trunks is None:
        object_trunk = load_cifar_trunk(folder / "object.safetensors")
        context_trunk = load_cifar_trunk(folder / "context.safetensors")
    else:
        object_trunk, context_trunk = torchvision_streams(trunks)
    model = ContextualFusion(object_trunk, context_trunk, _feature_dim(object_trunk), head=head)
    if heads_file is not None:
        heads_path = folder / heads_file
        if not heads_path.is_file():
            raise UserInputError(
                f"no heads checkpoint at {heads_path}; make one with "
                "`fedleak fusion train --stream heads`"
            )
        try:
            model.load_state_dict({k: v.float() for k, v in load_file(str(heads_path)).items()})
        except RuntimeError:
            kind = "CIFAR-10" if trunks is None else "ImageNet / Places365"
            raise UserInputError(
                f"heads {str(heads_path)!r} do not fit the {kind} trunks ({model.feature_dim}-d "
                "features); give the heads trained on them (`fedleak fusion train --stream heads`)"
            ) from None
    return model.eval()


def _feature_dim(trunk: nn.Module) -> int:
    with torch.no_grad():
        return int(trunk.eval()(torch.zeros(1, 3, 32, 32)).shape[1])


class HeadClassifier(nn.Module):
    """One head of a fusion model as a plain classifier: normalised images → that head's logits."""

    def __init__(self, model: ContextualFusion, head: str) -> None:
        super().__init__()
        if head not in HEADS:
            raise UnknownNameError("head", head, HEADS)
        self.model, self.head = model, head

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits [N, classes] of ``self.head`` for normalised images [N, C, H, W]."""
        return self.model.logits(x, self.head)
