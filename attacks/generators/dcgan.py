"""A DCGAN generator (Radford et al. 2016) whose forward is split into stages, and its critic.

Stage 0 maps the latent to the first feature map; every later stage doubles the side; the
last stage ends in the image, in [-1, 1]. GIFD optimises the input of any stage, so
``from_stage(k, x)`` runs stages k, k+1, … on an input ``x`` of stage k.

With ``num_classes`` the generator is class-conditional, as GIFD conditions BigGAN: every
batch norm of the generator takes a per-class scale and shift (conditional batch norm,
de Vries et al. 2017), and ``condition(labels)`` fixes the class of each image before a forward
— the engine calls it with the label strategy's labels, so a stage's input stays the only
thing searched. Its critic is then a projection discriminator (Miyato & Koyama 2018) with
spectral-normalised convolutions.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import nn

from fedsim.errors import UserInputError

LATENT_DIM = 128
WIDTH = 128  # default channels of the first feature map, halved at every stage


def first_side(side: int) -> tuple[int, int]:
    """The first feature map's side and the number of doublings that reach ``side``."""
    for start in (4, 7):
        doublings = 0
        while start * 2**doublings < side:
            doublings += 1
        if start * 2**doublings == side:
            return start, doublings
    raise UserInputError(f"generator image side must be 4·2^k or 7·2^k (e.g. 28, 32); got {side}")


class ClassConditionalNorm(nn.Module):
    """Batch norm without its own affine part, then a scale and shift looked up per class."""

    def __init__(self, channels: int, num_classes: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm2d(channels, affine=False)
        self.scale = nn.Embedding(num_classes, channels)
        self.shift = nn.Embedding(num_classes, channels)
        nn.init.ones_(self.scale.weight)
        nn.init.zeros_(self.shift.weight)
        # Not a buffer: the class of each image is input, set by condition(), never saved.
        self.labels = torch.zeros(0, dtype=torch.long)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """Normalise, then apply each image's class scale and shift (labels set beforehand)."""
        if self.labels.shape != features.shape[:1]:
            raise UserInputError(
                "a class-conditional generator needs condition(labels) for its "
                f"{features.shape[0]} images first (it has {self.labels.numel()} labels)"
            )
        scale = self.scale(self.labels)[:, :, None, None]
        shift = self.shift(self.labels)[:, :, None, None]
        return self.norm(features) * scale + shift


class StagedGenerator(nn.Module):
    """latent (N, 128) → stage 0 → (N, 128, s, s) → … → stage K → image (N, C, side, side)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = LATENT_DIM,
        width: int = WIDTH,
        num_classes: int = 0,
    ) -> None:
        super().__init__()
        channels, side, across = image_shape
        if side != across:
            raise UserInputError(f"generator images must be square; got {side}x{across}")
        start, doublings = first_side(side)
        self.image_shape, self.latent_dim, self.width = tuple(image_shape), latent_dim, width
        self.num_classes = num_classes

        def norm(width: int) -> nn.Module:
            if num_classes:
                return ClassConditionalNorm(width, num_classes)
            return nn.BatchNorm2d(width)

        stages: list[nn.Module] = [
            nn.Sequential(
                nn.Unflatten(1, (latent_dim, 1, 1)),
                nn.ConvTranspose2d(latent_dim, width, start, bias=False),
                norm(width),
                nn.ReLU(),
            )
        ]
        width_in = width
        for stage in range(doublings):
            last = stage == doublings - 1
            width_out = channels if last else width_in // 2
            up = nn.ConvTranspose2d(width_in, width_out, 4, stride=2, padding=1, bias=last)
            tail = [nn.Tanh()] if last else [norm(width_out), nn.ReLU()]
            stages.append(nn.Sequential(up, *tail))
            width_in = width_out
        self.stages = nn.ModuleList(stages)

    @property
    def conditional(self) -> bool:
        """Whether the generator needs ``condition(labels)`` before a forward."""
        return self.num_classes > 0

    def condition(self, labels: torch.Tensor) -> None:
        """Make class ``labels[i]`` for image i of every following forward (labels (N,))."""
        if not self.num_classes:
            raise UserInputError("this generator is not class-conditional")
        labels = torch.as_tensor(labels, dtype=torch.long)
        if labels.numel() and not 0 <= int(labels.min()) <= int(labels.max()) < self.num_classes:
            raise UserInputError(
                f"labels must be classes 0..{self.num_classes - 1}; got {labels.tolist()}"
            )
        for module in self.modules():
            if isinstance(module, ClassConditionalNorm):
                module.labels = labels.to(module.scale.weight.device)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] from latents (N, latent_dim)."""
        return self.from_stage(0, latent)

    def from_stage(self, stage: int, features: torch.Tensor) -> torch.Tensor:
        """Run stages ``stage`` … last on ``features`` (the input of that stage)."""
        return run_blocks(self.stages[stage:], features)

    def stage_input(self, stage: int, latent: torch.Tensor) -> torch.Tensor:
        """The input of stage ``stage`` for these latents (the latent itself for stage 0)."""
        return run_blocks(self.stages[:stage], latent)


def run_blocks(blocks: Iterable[nn.Module], features: torch.Tensor) -> torch.Tensor:
    """``features`` through ``blocks`` in order: a staged generator's stages, or a slice of them."""
    for block in blocks:
        features = block(features)
    return features


class Critic(nn.Module):
    """DCGAN discriminator: strided convs with LeakyReLU down to one logit per image.

    With ``num_classes`` it is a projection discriminator: spectral-normalised convolutions
    (no batch norm), and the logit adds ⟨embed(label), pooled features⟩ to the unconditional one.
    """

    def __init__(
        self, image_shape: tuple[int, int, int], width: int = WIDTH, num_classes: int = 0
    ) -> None:
        super().__init__()
        channels, side, _ = image_shape
        start, doublings = first_side(side)
        spectral = nn.utils.parametrizations.spectral_norm if num_classes else (lambda m: m)
        layers: list[nn.Module] = []
        width_in, width_out = channels, width // 2 ** (doublings - 1)
        for stage in range(doublings):
            conv = nn.Conv2d(width_in, width_out, 4, stride=2, padding=1, bias=stage == 0)
            layers.append(spectral(conv))
            if stage and not num_classes:
                layers.append(nn.BatchNorm2d(width_out))
            layers.append(nn.LeakyReLU(0.2))
            width_in, width_out = width_out, width_out * 2
        self.features = nn.Sequential(*layers)
        self.logit = nn.Sequential(spectral(nn.Conv2d(width_in, 1, start)), nn.Flatten())
        self.projection = spectral(nn.Embedding(num_classes, width_in)) if num_classes else None

    def forward(self, images: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """One real/fake logit per image in [-1, 1] (of class ``labels`` when conditional)."""
        features = self.features(images)
        logits = self.logit(features).squeeze(1)
        if self.projection is None:
            return logits
        return logits + (self.projection(labels) * features.sum((2, 3))).sum(1)
