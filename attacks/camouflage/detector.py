"""The car detectors DTA attacks: torchvision detection models trained on renderer scenes from
random initialisation, or around the frozen CIFAR-10 trunk fedleak ships (photo features), or
started from COCO weights a user has on disk; and their car scores."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields
from functools import partial
from pathlib import Path

import torch
from torch import nn
from torchvision.models import detection, mobilenet_v3_large
from torchvision.models.detection import _utils as det_utils
from torchvision.models.detection import ssdlite
from torchvision.models.detection.anchor_utils import AnchorGenerator, DefaultBoxGenerator
from torchvision.models.detection.backbone_utils import BackboneWithFPN
from torchvision.models.detection.fcos import FCOSHead
from torchvision.models.detection.retinanet import RetinaNetHead
from torchvision.ops.feature_pyramid_network import LastLevelMaxPool
from torchvision.ops.misc import FrozenBatchNorm2d

from attacks.camouflage.detection_data import DetectionSet
from fedsim.data import get_dataset_spec
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.models.fusion import SHIPPED_CHECKPOINTS, load_cifar_trunk
from fedsim.storage import load_tensors, save_tensors

# Our own detectors have two classes, background (0) and car (1); COCO's car is class 3 of 91.
CAR_LABEL = 1
COCO_CLASSES, COCO_CAR_LABEL = 91, 3


# Backbone width of both detectors (MobileNetV3-Large's channels times this) and FCOS's pyramid
# and head channels: small enough that a checkpoint is a few MB and trains on a CPU.
WIDTH_MULT = 0.5
FPN_CHANNELS = 64


def _mobilenet_features(norm_layer: Callable[..., nn.Module]) -> tuple[nn.Sequential, list[int]]:
    """A random-init MobileNetV3-Large (reduced tail) at WIDTH_MULT: its feature blocks and the
    indices of its stage ends (C0 .. Cn, as torchvision's detection extractors count them)."""
    features = mobilenet_v3_large(
        weights=None, width_mult=WIDTH_MULT, reduced_tail=True, norm_layer=norm_layer
    ).features
    stages = [0] + [i for i, b in enumerate(features) if getattr(b, "_is_cn", False)]
    return features, stages + [len(features) - 1]


def _ssdlite(num_classes: int, size: int) -> nn.Module:
    """SSDLite (torchvision's ssdlite320 recipe) on a half-width MobileNetV3-Large, its extra
    layers narrowed alike, for fixed ``size``² inputs."""
    norm = partial(nn.BatchNorm2d, eps=0.001, momentum=0.03)
    features, stages = _mobilenet_features(norm)
    ssdlite._normal_init(features)
    extractor = ssdlite.SSDLiteFeatureExtractorMobileNet(
        features, stages[-2], norm, width_mult=WIDTH_MULT
    )
    anchors = DefaultBoxGenerator([[2, 3] for _ in range(6)], min_ratio=0.2, max_ratio=0.95)
    channels = det_utils.retrieve_out_channels(extractor, (size, size))
    head = ssdlite.SSDLiteHead(channels, anchors.num_anchors_per_location(), num_classes, norm)
    return detection.ssd.SSD(
        extractor,
        anchors,
        (size, size),
        num_classes,
        head=head,
        nms_thresh=0.55,
        detections_per_img=300,
        topk_candidates=300,
        image_mean=[0.5, 0.5, 0.5],
        image_std=[0.5, 0.5, 0.5],
    )


def _fcos(num_classes: int, size: int) -> nn.Module:
    """FCOS on a half-width MobileNetV3-Large with a FPN_CHANNELS-wide pyramid (strides 16, 32,
    64, one point per cell) and two-conv heads."""
    # torchvision's default here is FrozenBatchNorm2d, made for pretrained backbones: from random
    # initialisation it normalises nothing and the deep features collapse to a constant.
    features, stages = _mobilenet_features(nn.BatchNorm2d)
    returned = [len(stages) - 2, len(stages) - 1]
    backbone = BackboneWithFPN(
        features,
        {str(stages[k]): str(v) for v, k in enumerate(returned)},
        [features[stages[k]].out_channels for k in returned],
        FPN_CHANNELS,
        extra_blocks=LastLevelMaxPool(),
    )
    anchors = AnchorGenerator(sizes=((16,), (32,), (64,)), aspect_ratios=((1.0,),) * 3)
    return detection.FCOS(
        backbone,
        num_classes=num_classes,
        min_size=size,
        max_size=size,
        anchor_generator=anchors,
        head=FCOSHead(FPN_CHANNELS, 1, num_classes, num_convs=2),
    )


# The CIFAR-10 object trunk fedleak's contextual fusion ships (84 % test accuracy): features
# learnt from real photographs, automobiles and trucks among them. The detectors built on it
# keep it frozen, and their checkpoints leave out its state (keys under TRUNK_KEYS).
CIFAR_TRUNK = SHIPPED_CHECKPOINTS / "object.safetensors"
PHOTO_PRETRAINED = ("fcos-cifar", "retinanet-cifar")
TRUNK_KEYS = "backbone.body."


def _cifar_pyramid() -> BackboneWithFPN:
    """The CIFAR-10 object trunk, frozen, under a FPN_CHANNELS-wide pyramid on its stride-4 and
    stride-8 stages (and a max-pooled stride-16 level): the offline stand-in for the
    photo-pretrained backbones of the detectors DTA attacks (none can be downloaded here)."""
    trunk = load_cifar_trunk(CIFAR_TRUNK)
    body = _frozen(nn.Sequential(trunk.stem, *trunk.blocks))
    # Children: 0 the stem, 1..8 the basic blocks; 6 and 8 end the last two stages.
    widths = [body[k].conv2.out_channels for k in (6, 8)]
    return BackboneWithFPN(
        body, {"6": "0", "8": "1"}, widths, FPN_CHANNELS, extra_blocks=LastLevelMaxPool()
    )


def _cifar_input(size: int) -> dict:
    """Detector options for ``size``² inputs normalised as the CIFAR trunk was trained."""
    cifar = get_dataset_spec("cifar10")
    return {
        "min_size": size,
        "max_size": size,
        "image_mean": list(cifar.mean),
        "image_std": list(cifar.std),
    }


def _fcos_cifar(num_classes: int, size: int) -> nn.Module:
    """FCOS (anchor-free, one point per cell) on the frozen CIFAR pyramid; only the pyramid and
    heads learn the renders."""
    anchors = AnchorGenerator(sizes=((4,), (8,), (16,)), aspect_ratios=((1.0,),) * 3)
    return detection.FCOS(
        _cifar_pyramid(),
        num_classes=num_classes,
        anchor_generator=anchors,
        head=FCOSHead(FPN_CHANNELS, 1, num_classes, num_convs=2),
        **_cifar_input(size),
    )


def _retinanet_cifar(num_classes: int, size: int) -> nn.Module:
    """RetinaNet (six anchors a cell, focal loss) on the frozen CIFAR pyramid: another detector
    architecture on the same photo-pretrained features, for transfer."""
    anchors = AnchorGenerator(
        sizes=((12, 20), (28, 40), (56, 80)), aspect_ratios=((0.5, 1.0, 2.0),) * 3
    )
    return detection.RetinaNet(
        _cifar_pyramid(),
        num_classes=num_classes,
        anchor_generator=anchors,
        head=RetinaNetHead(FPN_CHANNELS, anchors.num_anchors_per_location()[0], num_classes),
        **_cifar_input(size),
    )


def _frozen(module: nn.Module) -> nn.Module:
    """``module`` with its parameters fixed and every BatchNorm replaced by a frozen copy, so
    training mode and batch-norm recalibration leave it as it was trained."""
    for name, child in module.named_children():
        if isinstance(child, nn.BatchNorm2d):
            frozen = FrozenBatchNorm2d(child.num_features, eps=child.eps)
            for key in ("weight", "bias", "running_mean", "running_var"):
                getattr(frozen, key).copy_(getattr(child, key).detach())
            setattr(module, name, frozen)
        else:
            _frozen(child)
    return module.requires_grad_(False)


def _fasterrcnn(num_classes: int, size: int) -> nn.Module:
    """Faster R-CNN with a MobileNetV3-Large FPN, inputs resized to ``size`` (full width: the
    architecture of torchvision's COCO weights)."""
    return detection.fasterrcnn_mobilenet_v3_large_320_fpn(
        weights=None, weights_backbone=None, num_classes=num_classes, min_size=size, max_size=size
    )


# Name → builder(num_classes, size). ssdlite and fcos are the small detectors trained here from
# random initialisation, fcos-cifar and retinanet-cifar on a photo-pretrained frozen backbone;
# fasterrcnn keeps torchvision's full size (1.0 s per batch of eight 64² images on one thread).
ARCHITECTURES: dict[str, Callable[[int, int], nn.Module]] = {
    "ssdlite": _ssdlite,
    "fcos": _fcos,
    "fcos-cifar": _fcos_cifar,
    "retinanet-cifar": _retinanet_cifar,
    "fasterrcnn": _fasterrcnn,
}


@dataclass(frozen=True)
class DetectorRecord:
    """What a detector checkpoint says about how it was made."""

    arch: str
    size: int  # image side it was trained on, pixels
    num_classes: int
    car_label: int
    weights: str  # the COCO weights it started from, or "" for random initialisation
    data_seed: int
    steps: int
    seed: int
    command: str
    train_loss: float  # summed detection losses over the last steps


def build_detector(arch: str, size: int, num_classes: int = 2, seed: int = 0) -> nn.Module:
    """``arch`` for ``size``² images, initialised from ``seed``, that keeps every score
    (threshold 0): AP sees all of them and the attack has a gradient even for faint ones."""
    if arch not in ARCHITECTURES:
        raise UnknownNameError("detector architecture", arch, ARCHITECTURES)
    torch.manual_seed(seed)
    model = ARCHITECTURES[arch](num_classes, size)
    heads = model.roi_heads if hasattr(model, "roi_heads") else model
    heads.score_thresh = 0.0
    return model


def load_coco_weights(model: nn.Module, path: Path) -> None:
    """Load a torchvision COCO state dict (a ``.pth`` file on disk; nothing is downloaded)."""
    if not Path(path).is_file():
        raise UserInputError(f"no weights file at {str(path)!r}")
    state = torch.load(path, map_location="cpu", weights_only=True)
    try:
        model.load_state_dict(state)
    except RuntimeError as error:
        first = str(error).splitlines()[1].strip() if "\n" in str(error) else str(error)
        raise UserInputError(f"{path} does not fit this architecture: {first}") from None


def train_detector(
    model: nn.Module,
    data: DetectionSet,
    *,
    car_label: int,
    steps: int,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    device: torch.device | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> tuple[nn.Module, float]:
    """Train ``model`` with Adam (cosine-decayed) for ``steps`` batches of scenes drawn with
    replacement, each flipped left-right at random; return it (eval mode, on CPU) and its summed
    detection loss over the last 10% of steps. ``progress(step, loss)`` follows each step."""
    device = device or torch.device("cpu")
    generator = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = model.to(device).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimiser, T_max=max(steps, 1))
    tail: list[float] = []
    for step in range(1, steps + 1):
        chosen = torch.randint(len(data.images), (batch_size,), generator=generator).tolist()
        flips = (torch.rand(batch_size, generator=generator) < 0.5).tolist()
        loss = sum(model(*_batch(data, chosen, flips, car_label, device)).values())
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), 10.0)
        optimiser.step()
        schedule.step()
        value = float(loss.detach())
        if step > steps - max(1, steps // 10):
            tail.append(value)
        if progress:
            progress(step, value)
    if steps:
        _calibrate_batch_norm(model, data, car_label, batch_size, device)
    return model.cpu().eval(), sum(tail) / len(tail) if tail else float("nan")


def _batch(
    data: DetectionSet, chosen: list[int], flips: list[bool], car_label: int, device: torch.device
) -> tuple[list[torch.Tensor], list[dict[str, torch.Tensor]]]:
    """The images and targets of scenes ``chosen``, each flipped left-right where ``flips`` is."""
    width = data.images.shape[-1]
    images, targets = [], []
    for index, flip in zip(chosen, flips, strict=True):
        image, boxes = data.images[index], data.boxes[index].clone()
        if flip:
            image = image.flip(-1)
            boxes[:, [0, 2]] = width - boxes[:, [2, 0]]
        labels = torch.full((len(boxes),), car_label, dtype=torch.int64)
        images.append(image.to(device))
        targets.append({"boxes": boxes.to(device), "labels": labels.to(device)})
    return images, targets


def _calibrate_batch_norm(
    model: nn.Module, data: DetectionSet, car_label: int, batch_size: int, device: torch.device
) -> None:
    """Reset every BatchNorm's running statistics to their plain average over the training
    scenes under the final weights: after a short training from scratch the running averages
    still remember the first steps, and the model in eval mode then ignores its input."""
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for norm in norms:
        norm.reset_running_stats()
        norm.momentum = None  # a cumulative average
    indices = list(range(len(data.images)))
    with torch.no_grad():
        for start in range(0, len(indices), batch_size):
            chosen = indices[start : start + batch_size]
            model(*_batch(data, chosen, [False] * len(chosen), car_label, device))
    for norm in norms:
        norm.momentum = 0.1


def car_detections(
    model: nn.Module, images: torch.Tensor, car_label: int
) -> list[dict[str, torch.Tensor]]:
    """The detector's car boxes (B, 4) xyxy pixels and scores (B,) in [0, 1] for each image of
    (N, 3, H, W) sRGB in [0, 1]; differentiable in the images (call under no_grad to score)."""
    outputs = model.eval()(list(images))
    return [
        {
            "boxes": out["boxes"][out["labels"] == car_label],
            "scores": out["scores"][out["labels"] == car_label],
        }
        for out in outputs
    ]


def car_confidence(model: nn.Module, images: torch.Tensor, car_label: int) -> torch.Tensor:
    """(N,) the highest car score the detector gives each image (0 where it gives none)."""
    return torch.stack(
        [
            found["scores"].max() if len(found["scores"]) else images.new_zeros(())
            for found in car_detections(model, images, car_label)
        ]
    )


def save_detector(
    path: Path, model: nn.Module, record: DetectorRecord, run: dict | None = None
) -> None:
    """Write the detector's weights (safetensors) with its record and ``run`` provenance; a
    photo-pretrained one's frozen trunk is not copied, only the digest of its file."""
    state, meta = model.state_dict(), {**asdict(record), "provenance": run or {}}
    if record.arch in PHOTO_PRETRAINED:
        state = {k: v for k, v in state.items() if not k.startswith(TRUNK_KEYS)}
        meta["trunk_sha256"] = _digest(CIFAR_TRUNK)
    save_tensors(path, state, meta)


def load_detector(path: Path) -> tuple[nn.Module, DetectorRecord]:
    """Read a checkpoint written by :func:`save_detector`, in eval mode on the CPU."""
    if not Path(path).is_file():
        raise UserInputError(
            f"no detector checkpoint at {str(path)!r}; train one: fedleak dta train-detector"
        )
    tensors, meta = load_tensors(Path(path))
    if "arch" not in meta:
        raise UserInputError(f"{path} is not a detector checkpoint (no architecture recorded)")
    record = DetectorRecord(**{field.name: meta[field.name] for field in fields(DetectorRecord)})
    model = build_detector(record.arch, record.size, record.num_classes)
    if record.arch in PHOTO_PRETRAINED:
        if meta.get("trunk_sha256") != _digest(CIFAR_TRUNK):
            raise UserInputError(f"{path} was trained on another trunk than {CIFAR_TRUNK}")
        tensors = {**model.state_dict(), **tensors}
    model.load_state_dict(tensors)
    return model.eval(), record


def _digest(path: Path) -> str:
    """The SHA-256 of a file's bytes, in hex."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
