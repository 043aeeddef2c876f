"""A DCGAN generator (Radford et al. 2016) whose forward is split into stages, and its critic.

Stage 0 maps the latent to the first feature map; every later stage doubles the side; the
last stage ends in the image, in [-1, 1]. GIFD optimises the input of any stage, so
``from_stage(k, x)`` runs stages k, k+1, … on an input ``x`` of stage k.
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


class StagedGenerator(nn.Module):
    """latent (N, 128) → stage 0 → (N, 128, s, s) → … → stage K → image (N, C, side, side)."""

    def __init__(
        self,
        image_shape: tuple[int, int, int],
        latent_dim: int = LATENT_DIM,
        width: int = WIDTH,
    ) -> None:
        super().__init__()
        channels, side, across = image_shape
        if side != across:
            raise UserInputError(f"generator images must be square; got {side}x{across}")
        start, doublings = first_side(side)
        self.image_shape, self.latent_dim, self.width = tuple(image_shape), latent_dim, width
        stages: list[nn.Module] = [
            nn.Sequential(
                nn.Unflatten(1, (latent_dim, 1, 1)),
                nn.ConvTranspose2d(latent_dim, width, start, bias=False),
                nn.BatchNorm2d(width),
                nn.ReLU(),
            )
        ]
        width_in = width
        for stage in range(doublings):
            last = stage == doublings - 1
            width_out = channels if last else width_in // 2
            up = nn.ConvTranspose2d(width_in, width_out, 4, stride=2, padding=1, bias=last)
            tail = [nn.Tanh()] if last else [nn.BatchNorm2d(width_out), nn.ReLU()]
            stages.append(nn.Sequential(up, *tail))
            width_in = width_out
        self.stages = nn.ModuleList(stages)

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
    """DCGAN discriminator: strided convs with LeakyReLU down to one logit per image."""

    def __init__(self, image_shape: tuple[int, int, int], width: int = WIDTH) -> None:
        super().__init__()
        channels, side, _ = image_shape
        start, doublings = first_side(side)
        layers: list[nn.Module] = []
        width_in, width_out = channels, width // 2 ** (doublings - 1)
        for stage in range(doublings):
            layers += [nn.Conv2d(width_in, width_out, 4, stride=2, padding=1, bias=stage == 0)]
            if stage:
                layers.append(nn.BatchNorm2d(width_out))
            layers.append(nn.LeakyReLU(0.2))
            width_in, width_out = width_out, width_out * 2
        layers += [nn.Conv2d(width_in, 1, start), nn.Flatten()]
        self.layers = nn.Sequential(*layers)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """One real/fake logit per image in [-1, 1]."""
        return self.layers(images).squeeze(1)
