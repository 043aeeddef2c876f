"""Where the attack searches: the pixels themselves, or the input of one generator stage.

A search space holds the searched tensor (restarts first), maps one restart's slice of it to
images in the model's normalised input space, and projects it back onto its constraint set
after every step: the pixel box, the latent sphere, or an l1 ball around the stage's start
(GIFD, Fang et al. ICCV 2023).
"""

from __future__ import annotations

import torch
from torch import nn


class PixelBox:
    """The valid pixel range [0, 1] expressed in the model's normalised input space."""

    def __init__(self, mean: tuple[float, ...], std: tuple[float, ...], device: torch.device):
        self.mean = torch.tensor(mean, device=device).view(-1, 1, 1)
        self.std = torch.tensor(std, device=device).view(-1, 1, 1)
        self.low, self.high = (0 - self.mean) / self.std, (1 - self.mean) / self.std

    @torch.no_grad()
    def clamp_(self, images: torch.Tensor) -> None:
        """Project normalised images into the box, in place."""
        images.copy_(torch.max(torch.min(images, self.high), self.low))

    def to_pixels(self, images: torch.Tensor) -> torch.Tensor:
        """De-normalise to pixels in [0, 1]."""
        return (images * self.std + self.mean).clamp(0, 1)

    def from_pixels(self, pixels: torch.Tensor) -> torch.Tensor:
        """Normalise pixels in [0, 1] to the model's input space."""
        return (pixels - self.mean) / self.std


class PixelSpace:
    """Search normalised images directly (DLG, iDLG, IG, DIA), optionally kept in the box."""

    def __init__(self, start: torch.Tensor, box: PixelBox, *, boxed: bool) -> None:
        self.params = start.requires_grad_(True)
        self.box, self.boxed = box, boxed

    def images(self, params: torch.Tensor) -> torch.Tensor:
        """The searched tensor is the image batch."""
        return params

    def project_(self) -> None:
        """Clamp to the valid pixel range when the attack is boxed."""
        if self.boxed:
            self.box.clamp_(self.params)


class GeneratorSpace:
    """Search the input of generator stage ``stage``; images come from the stages after it.

    Stage 0 searches the latent, kept on the sphere of radius √d; a later stage searches its
    feature map, whose change from ``start`` is kept in an l1 ball of ``radius`` per image.
    """

    def __init__(
        self,
        generator: nn.Module,
        stage: int,
        start: torch.Tensor,
        box: PixelBox,
        *,
        radius: float | torch.Tensor | None = None,
    ) -> None:
        self.generator, self.stage, self.box = generator, stage, box
        self.start = start.detach()
        self.radius = radius
        self.params = self.start.clone().requires_grad_(True)
        self.project_()

    def images(self, params: torch.Tensor) -> torch.Tensor:
        """Normalised images from one restart's stage input (batch first)."""
        pixels = (self.generator.from_stage(self.stage, params) + 1) / 2
        return self.box.from_pixels(pixels)

    @torch.no_grad()
    def project_(self) -> None:
        """Back onto the latent sphere (stage 0) or the l1 ball around the start."""
        if self.stage == 0:
            self.params.copy_(project_to_sphere(self.params))
        elif self.radius is not None:
            change = project_to_l1_ball(self.params - self.start, self.radius)
            self.params.copy_(self.start + change)


def project_to_sphere(latents: torch.Tensor) -> torch.Tensor:
    """Scale each latent (last dimension) to norm √d, the typical norm of a N(0, I) draw."""
    return latents / latents.norm(dim=-1, keepdim=True) * latents.shape[-1] ** 0.5


def project_to_l1_ball(change: torch.Tensor, radius: float | torch.Tensor) -> torch.Tensor:
    """Euclidean projection of each image's change (dims 2.. of restarts × batch × …) onto the
    l1 ball of ``radius`` (Duchi et al. 2008); ``radius`` may be one value or one per image."""
    flat = change.flatten(2)
    radius = torch.as_tensor(radius, dtype=flat.dtype, device=flat.device).expand(flat.shape[:2])
    magnitudes = flat.abs()
    inside = magnitudes.sum(-1) <= radius
    sorted_magnitudes = magnitudes.sort(dim=-1, descending=True).values
    cumulative = sorted_magnitudes.cumsum(-1)
    ranks = torch.arange(1, flat.shape[-1] + 1, device=flat.device, dtype=flat.dtype)
    above = sorted_magnitudes * ranks > cumulative - radius.unsqueeze(-1)
    count = above.sum(-1, keepdim=True).clamp(min=1)
    threshold = (cumulative.gather(-1, count - 1) - radius.unsqueeze(-1)) / count
    shrunk = flat.sign() * (magnitudes - threshold).clamp(min=0)
    projected = torch.where(inside.unsqueeze(-1), flat, shrunk)
    return projected.view_as(change)
