"""BigGAN-deep (Brock et al. 2019, the ``pytorch-pretrained-biggan`` package) as a staged
generator for GIFD, the external generator of Fang et al. 2023.

:class:`BigGANStages` offers what :class:`~attacks.generators.StagedGenerator` offers —
``latent_dim``, ``image_shape``, ``stages`` (an ``nn.ModuleList`` whose composition is the
generator), ``stage_input(k, latent)``, ``from_stage(k, x)``, images in [-1, 1] — over BigGAN's
generator: stage 0 maps the latent to the first 4×4 feature map; stage k runs BigGAN's k-th
layer (a residual block or the self-attention layer); the last stage also runs the output head
and, when the attacked model takes smaller images, area-downsamples to that side (GIFD does
the same).

BigGAN's blocks read a conditioning vector (latent ⊕ class embedding) besides the feature
map, so the input of a stage k ≥ 1 is one flat tensor per image: the flattened feature map
followed by that vector. ``from_stage(k, x)`` holds the vector fixed (no gradient reaches it),
as GIFD's own BigGAN code keeps it fixed while it searches a feature domain. GIFD's l1 radius
is then measured over both parts: the vector's 2·z_dim numbers next to the map's C·H·W.

The class is fixed for a reconstruction: the engine calls :meth:`BigGANStages.condition` with
the labels of the attack's label strategy, each mapped through ``class_map`` (dataset label →
generator class; the identity unless given). ``truncation`` (0, 1] scales the latent and
picks BigGAN's batch-norm statistics, as ``truncated_noise_sample`` and ``BigGAN.forward``
use it; 1.0, GIFD's value, leaves the latent as drawn.

The package is optional (``pip install 'fedleak[biggan]'``); its weights come from a local
folder holding ``config.json`` and ``pytorch_model.bin``, as ``BigGAN.from_pretrained(DIR)``
reads them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional

from attacks.generators.dcgan import run_blocks
from fedsim.errors import FedleakError, UserInputError

CONFIG_NAME = "config.json"
WEIGHTS_NAME = "pytorch_model.bin"


@dataclass(frozen=True)
class BigGANRecord:
    """What an attack run records about the BigGAN it searched."""

    folder: str
    image_shape: tuple[int, int, int]
    native_shape: tuple[int, int, int]
    latent_dim: int
    num_classes: int
    truncation: float
    config: dict = field(default_factory=dict)


def is_biggan_folder(path: Path) -> bool:
    """Whether ``path`` is a pytorch-pretrained-biggan folder (it holds ``config.json``)."""
    return Path(path).is_dir() and (Path(path) / CONFIG_NAME).is_file()


def load_biggan(
    folder: Path, image_shape: tuple[int, ...], *, truncation: float = 1.0
) -> tuple[BigGANStages, BigGANRecord]:
    """The BigGAN in ``folder`` (``config.json`` + ``pytorch_model.bin``), staged, frozen, in
    eval mode, making ``image_shape`` images; refused in one line if it cannot."""
    biggan = _require_package()
    folder = Path(folder)
    weights = folder / WEIGHTS_NAME
    if not weights.is_file():
        raise UserInputError(
            f"BigGAN folder {str(folder)!r} has {CONFIG_NAME} but no {WEIGHTS_NAME}"
        )
    try:
        config = biggan.BigGANConfig.from_json_file(str(folder / CONFIG_NAME))
        model = biggan.BigGAN(config)
        # Strict, unlike from_pretrained: a folder whose weights do not fit is refused rather
        # than run with some layers left at their random initialisation.
        model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    except Exception as error:  # JSON, pickle and state-dict errors come in many types
        raise UserInputError(
            f"cannot read BigGAN folder {str(folder)!r}: {' '.join(str(error).split())[:300]}"
        ) from error
    stages = BigGANStages(model, truncation=truncation)
    side = image_shape[-1]
    if image_shape[0] != 3 or image_shape[1] != side or side > stages.native_shape[-1]:
        raise UserInputError(
            f"BigGAN {str(folder)!r} makes {stages.native_shape} images (area-downsampled to a "
            f"smaller side if need be); the attacked model takes {tuple(image_shape)}"
        )
    stages.downsample_to(side)
    record = BigGANRecord(
        folder=str(folder.resolve()),
        image_shape=stages.image_shape,
        native_shape=stages.native_shape,
        latent_dim=stages.latent_dim,
        num_classes=stages.num_classes,
        truncation=truncation,
        config=config.to_dict(),
    )
    return stages, record


class BigGANStages(nn.Module):
    """latent (N, z_dim) → stage 0 → 4×4 features ⊕ condition → … → image (N, 3, side, side).

    Takes over ``biggan`` (a ``pytorch_pretrained_biggan.BigGAN``): frozen, in eval mode, its
    spectral norms folded into the weights.
    """

    conditional = True  # BigGAN always makes a class: ``condition`` before a forward

    def __init__(
        self,
        biggan: nn.Module,
        *,
        truncation: float = 1.0,
        image_side: int | None = None,
        class_map: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        if not 0 < truncation <= 1:
            raise UserInputError(f"BigGAN truncation must be in (0, 1]; got {truncation}")
        _require_package()
        from pytorch_pretrained_biggan.model import GenBlock

        _remove_spectral_norm(biggan.eval())
        biggan.requires_grad_(False)  # after: the folded weights are new parameters
        generator, config = biggan.generator, biggan.config
        self.latent_dim, self.num_classes = config.z_dim, config.num_classes
        self.truncation = truncation
        shape = (16 * config.channel_width, 4, 4)
        stages: list[nn.Module] = [
            _LatentStage(biggan.embeddings, generator.gen_z, shape, truncation)
        ]
        for layer in generator.layers:
            shape_in, conditional = shape, isinstance(layer, GenBlock)
            if conditional:
                side = shape[1] * (2 if layer.up_sample else 1)
                shape = (layer.conv_3.out_channels, side, side)
            stages.append(_LayerStage(layer, shape_in, truncation, conditional))
        stages[-1].head = _Head(generator, truncation)
        self.stages = nn.ModuleList(stages)
        self.native_shape = (3, shape[1], shape[2])
        self.image_shape = self.native_shape
        if image_side is not None:
            self.downsample_to(image_side)
        class_map = list(class_map or range(self.num_classes))
        if not all(0 <= c < self.num_classes for c in class_map):
            classes = f"0..{self.num_classes - 1}"
            raise UserInputError(f"class_map entries must be BigGAN classes {classes}")
        self.register_buffer("class_map", torch.tensor(class_map))

    def downsample_to(self, side: int) -> None:
        """Make ``side``×``side`` images: BigGAN's own, area-downsampled (never upsampled)."""
        if side > self.native_shape[-1]:
            raise UserInputError(
                f"BigGAN makes {self.native_shape} images; it cannot make {side}×{side} ones"
            )
        self.stages[-1].head.side = side
        self.image_shape = (3, side, side)

    def condition(self, labels: torch.Tensor) -> None:
        """Generate class ``class_map[label]`` for each image of the batch (labels (N,))."""
        labels = labels.to(self.class_map.device)
        if labels.numel() and int(labels.max()) >= len(self.class_map):
            raise UserInputError(
                f"label {int(labels.max())} has no BigGAN class: class_map covers labels "
                f"0..{len(self.class_map) - 1}"
            )
        classes = self.class_map[labels]
        self.stages[0].class_vectors = functional.one_hot(classes, self.num_classes).float()

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from latents (N, latent_dim)."""
        return self.from_stage(0, latent)

    def from_stage(self, stage: int, features: torch.Tensor) -> torch.Tensor:
        """Run stages ``stage`` … last on ``features`` (the input of that stage), the
        conditioning vector of a stage k ≥ 1 held fixed."""
        if stage:
            size = math.prod(self.stages[stage].shape_in)
            features = torch.cat([features[:, :size], features[:, size:].detach()], dim=1)
        return run_blocks(self.stages[stage:], features)

    def stage_input(self, stage: int, latent: torch.Tensor) -> torch.Tensor:
        """The input of stage ``stage`` for these latents (the latent itself for stage 0)."""
        return run_blocks(self.stages[:stage], latent)


class _LatentStage(nn.Module):
    """Latent → conditioning vector (truncation · latent ⊕ class embedding) → 4×4 features."""

    def __init__(
        self,
        embeddings: nn.Module,
        gen_z: nn.Module,
        shape: tuple[int, int, int],
        truncation: float,
    ) -> None:
        super().__init__()
        self.embeddings, self.gen_z = embeddings, gen_z
        self.shape, self.truncation = shape, truncation
        self.register_buffer("class_vectors", None, persistent=False)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        if self.class_vectors is None:
            raise UserInputError("a BigGAN generates a class: call condition(labels) first")
        if self.class_vectors.shape[0] != latent.shape[0]:
            raise UserInputError(
                f"BigGAN conditioned on {self.class_vectors.shape[0]} labels, asked for "
                f"{latent.shape[0]} images"
            )
        condition = torch.cat([latent * self.truncation, self.embeddings(self.class_vectors)], 1)
        channels, height, width = self.shape
        # BigGAN's weights come from TensorFlow: the linear layer's output is height-major.
        features = self.gen_z(condition).view(-1, height, width, channels)
        return _pack(features.permute(0, 3, 1, 2).contiguous(), condition)


class _LayerStage(nn.Module):
    """One BigGAN layer on the packed (features ⊕ condition); the last one also runs the head."""

    def __init__(
        self, layer: nn.Module, shape_in: tuple[int, int, int], truncation: float, conditional: bool
    ) -> None:
        super().__init__()
        self.layer, self.shape_in, self.truncation = layer, shape_in, truncation
        self.conditional = conditional  # residual blocks read the condition; self-attention not
        self.head: nn.Module | None = None

    def forward(self, packed: torch.Tensor) -> torch.Tensor:
        size = math.prod(self.shape_in)
        features = packed[:, :size].reshape(-1, *self.shape_in)
        condition = packed[:, size:]
        if self.conditional:
            features = self.layer(features, condition, self.truncation)
        else:
            features = self.layer(features)
        if self.head is not None:
            return self.head(features)
        return _pack(features, condition)


class _Head(nn.Module):
    """BigGAN's output head: batch norm, ReLU, conv to RGB, tanh; area-downsampled to ``side``."""

    def __init__(self, generator: nn.Module, truncation: float) -> None:
        super().__init__()
        self.bn, self.conv_to_rgb = generator.bn, generator.conv_to_rgb
        self.truncation, self.side = truncation, None

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        features = functional.relu(self.bn(features, self.truncation))
        images = torch.tanh(self.conv_to_rgb(features)[:, :3])
        if self.side is not None and self.side < images.shape[-1]:
            images = functional.interpolate(images, size=(self.side, self.side), mode="area")
        return images


def _pack(features: torch.Tensor, condition: torch.Tensor) -> torch.Tensor:
    return torch.cat([features.flatten(1), condition], dim=1)


def _remove_spectral_norm(model: nn.Module) -> None:
    """Fold each spectral norm into its weight (eval mode: no power iteration, same values), so
    the frozen generator has plain weights under ``torch.func`` transforms."""
    for module in model.modules():
        if hasattr(module, "weight_orig"):
            nn.utils.remove_spectral_norm(module)


def _require_package():
    try:
        import pytorch_pretrained_biggan
    except ImportError:
        raise FedleakError(
            "BigGAN generators need pytorch-pretrained-biggan: pip install 'fedleak[biggan]'"
        ) from None
    return pytorch_pretrained_biggan
