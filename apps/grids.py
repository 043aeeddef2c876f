"""Comparison grids a person can read: nearest-neighbour upscaled images with labelled margins."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from PIL import Image, ImageDraw, ImageFont

MIN_IMAGE_PX = 128
"""Each image of a grid is shown at least this many pixels on its shorter side."""
_PAD = 4
_FONT_PX = 13
_STRIP = _FONT_PX + 6
_BACKGROUND = (255, 255, 255)
_INK = (20, 20, 20)


def upscale_factor(height: int, width: int) -> int:
    """The smallest integer factor that brings an image's shorter side to MIN_IMAGE_PX."""
    return max(1, math.ceil(MIN_IMAGE_PX / min(height, width)))


def _to_pil(image: torch.Tensor, factor: int) -> Image.Image:
    """A (C, H, W) tensor in [0, 1] as an RGB image, upscaled nearest-neighbour by ``factor``."""
    pixels = image.detach().cpu().clamp(0, 1).mul(255).round().to(torch.uint8)
    if pixels.shape[0] == 1:
        pixels = pixels.expand(3, -1, -1)
    picture = Image.fromarray(pixels.permute(1, 2, 0).numpy(), mode="RGB")
    return picture.resize((picture.width * factor, picture.height * factor), Image.NEAREST)


def comparison_grid(
    originals: torch.Tensor,
    reconstructions: torch.Tensor,
    psnr: Sequence[float | None] | None = None,
) -> Image.Image:
    """Originals above their paired reconstructions, each labelled; PSNR (dB) under each one.

    ``originals`` and ``reconstructions`` are (N, C, H, W) in [0, 1], paired by position;
    ``psnr`` holds one value per pair (None for an exact, infinite-PSNR match).
    """
    if originals.shape != reconstructions.shape:
        raise ValueError(f"{tuple(originals.shape)} originals vs {tuple(reconstructions.shape)}")
    count, _, height, width = originals.shape
    factor = upscale_factor(height, width)
    cell_w, cell_h = width * factor, height * factor
    grid_w = _PAD + count * (cell_w + _PAD)
    grid_h = 3 * _STRIP + 2 * cell_h + _PAD
    grid = Image.new("RGB", (grid_w, grid_h), _BACKGROUND)
    draw = ImageDraw.Draw(grid)
    font = ImageFont.load_default(size=_FONT_PX)
    rows = [
        ("original", originals, _STRIP),
        ("reconstruction", reconstructions, 2 * _STRIP + cell_h),
    ]
    for label, images, top in rows:
        draw.text((_PAD, top - _STRIP + 3), label, fill=_INK, font=font)
        for column, image in enumerate(images):
            grid.paste(_to_pil(image, factor), (_PAD + column * (cell_w + _PAD), top))
    for column, value in enumerate(psnr or ()):
        text = "PSNR ∞" if value is None or math.isinf(value) else f"PSNR {value:.1f} dB"
        left = _PAD + column * (cell_w + _PAD)
        draw.text((left, 2 * _STRIP + 2 * cell_h + 3), text, fill=_INK, font=font)
    return grid
