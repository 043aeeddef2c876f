"""DTA's repeated texture projection: a small pattern tiled over the image plane under random
shift / scale / rotation jitter, or read at the texture coordinates the renderer's surface AOV
gives; both differentiable in the pattern (``grid_sample`` with wrapped seams)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class Jitter:
    """Where the tiling starts and how it is laid: ``shift`` in pattern periods (u, v),
    ``scale`` in pattern periods per image width, ``rotation_deg`` about the image centre."""

    shift: tuple[float, float] = (0.0, 0.0)
    scale: float = 8.0
    rotation_deg: float = 0.0


def sample_jitter(
    generator: torch.Generator,
    scale_range: tuple[float, float] = (6.0, 10.0),
    max_rotation_deg: float = 20.0,
) -> Jitter:
    """A random Jitter: shift uniform over one period, scale and rotation uniform in range."""
    u = torch.rand(4, generator=generator).tolist()
    low, high = scale_range
    return Jitter(
        shift=(u[0], u[1]),
        scale=low + (high - low) * u[2],
        rotation_deg=max_rotation_deg * (2 * u[3] - 1),
    )


def tile_pattern(
    pattern: torch.Tensor, size: int | tuple[int, int], jitter: Jitter
) -> torch.Tensor:
    """The (3, H, W) image of ``pattern`` (3, h, w) repeated over the plane, bilinear with wrap
    at the seams; values stay in the pattern's range and gradients flow to every texel."""
    height, width = (size, size) if isinstance(size, int) else size
    return _sample_wrapped(pattern, _pattern_coordinates(height, width, jitter, pattern))


def sample_texture(pattern: torch.Tensor, uv: torch.Tensor) -> torch.Tensor:
    """The (3, H, W) colours of ``pattern`` (3, h, w) at texture coordinates ``uv`` (H, W, 2), in
    repeats (u across columns, v down rows, as Mitsuba's repeating bitmap reads them)."""
    return _sample_wrapped(pattern, uv.to(pattern.dtype).remainder(1.0))


def _sample_wrapped(pattern: torch.Tensor, coordinates: torch.Tensor) -> torch.Tensor:
    """Bilinear samples of ``pattern`` at (H, W, 2) coordinates in [0, 1), wrapped at the seams."""
    rows, cols = pattern.shape[-2:]
    # One texel of circular padding makes bilinear interpolation across a seam mix the last and
    # the first texel, as a wrapped texture does; coordinates in [0, 1) then land inside it.
    padded = F.pad(pattern[None], (1, 1, 1, 1), mode="circular")
    x = 2 * (coordinates[..., 0] * cols + 1) / (cols + 2) - 1
    y = 2 * (coordinates[..., 1] * rows + 1) / (rows + 2) - 1
    sampled = F.grid_sample(
        padded, torch.stack([x, y], dim=-1)[None], mode="bilinear", align_corners=False
    )
    return sampled[0]


def project_texture(pattern: torch.Tensor, mask: torch.Tensor, jitter: Jitter) -> torch.Tensor:
    """The expected texture η: ``pattern`` tiled over the image and painted inside ``mask``
    (H, W) in [0, 1], zero outside; shape (3, H, W)."""
    return tile_pattern(pattern, tuple(mask.shape[-2:]), jitter) * mask


def _pattern_coordinates(
    height: int, width: int, jitter: Jitter, like: torch.Tensor
) -> torch.Tensor:
    """(H, W, 2) pattern coordinates in [0, 1) (u across, v down) of each pixel centre."""
    ys = (torch.arange(height, dtype=like.dtype, device=like.device) + 0.5 - height / 2) / width
    xs = (torch.arange(width, dtype=like.dtype, device=like.device) + 0.5 - width / 2) / width
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    angle = math.radians(jitter.rotation_deg)
    cos, sin = math.cos(angle), math.sin(angle)
    u = (cos * x - sin * y) * jitter.scale + jitter.shift[0]
    v = (sin * x + cos * y) * jitter.scale + jitter.shift[1]
    return torch.stack([u, v], dim=-1).remainder(1.0)


@dataclass(frozen=True)
class PaintSamples:
    """Where a view's image shows the car's paint, read on a grid ``factor`` times finer than
    its pixels (a render_surface of factor × the image's side): ``uv`` (P, 2) the texture
    coordinates, wrapped to [0, 1), of the P fine samples that see the paint, ``pixel`` (P,) the
    flat index of the image pixel each lies in, and ``share`` (H, W) each pixel's fraction of
    samples on the paint."""

    uv: torch.Tensor
    pixel: torch.Tensor
    share: torch.Tensor
    factor: int


def paint_samples(uv: torch.Tensor, paint: torch.Tensor, factor: int) -> PaintSamples:
    """The paint samples of a render_surface's ``uv`` (kH, kW, 2) and ``paint`` (kH, kW) flags,
    k = ``factor``: only the samples on the paint, the rest of the grid is dropped."""
    rows, cols = torch.nonzero(paint.bool(), as_tuple=True)
    return PaintSamples(
        uv=uv[rows, cols].float().remainder(1.0),
        pixel=(rows // factor) * (paint.shape[1] // factor) + cols // factor,
        share=F.avg_pool2d(paint[None].float(), factor)[0],
        factor=factor,
    )


def surface_etas(
    pattern: torch.Tensor, samples: Sequence[PaintSamples], masks: torch.Tensor
) -> torch.Tensor:
    """η (N, 3, H, W) for a pattern as the renderer lays it on N views: the texel each paint
    sample of a view shows (``samples``, all of one factor k), the pattern's mean colour on the
    view's other fine samples, averaged over each pixel's k×k samples, times the car ``masks``
    (N, H, W). Lookup and averages are in linear light, as the renderer interpolates its linear
    bitmap and its box filter averages radiance: texels finer than a pixel blend to the colour
    the render shows, not to their sRGB mean. For a uniform pattern this is flat paint's η."""
    (factor,) = {sample.factor for sample in samples}
    count, (height, width) = len(samples), masks.shape[-2:]
    linear = _to_linear(pattern)
    uv = torch.cat([sample.uv for sample in samples])
    pixel = torch.cat([sample.pixel + view * height * width for view, sample in enumerate(samples)])
    share = torch.stack([sample.share for sample in samples]).reshape(1, -1)
    # One bilinear lookup for every view's paint samples, summed into their pixels.
    sampled = _sample_wrapped(linear, uv[None])[:, 0]
    summed = linear.new_zeros(3, count * height * width).index_add(1, pixel, sampled)
    painted = summed / factor**2 + linear.mean(dim=(1, 2))[:, None] * (1 - share)
    return _to_srgb(painted.reshape(3, count, height, width).transpose(0, 1)) * masks[:, None]


# The renderer's sRGB transfer function (renderer/render.py works on numpy arrays), here on
# tensors with gradients: each power is taken on clamped values, so the branch torch.where
# drops cannot send a NaN gradient through 0 ** (1 / 2.4).
def _to_linear(srgb: torch.Tensor) -> torch.Tensor:
    curve = ((srgb.clamp(min=0.04045) + 0.055) / 1.055) ** 2.4
    return torch.where(srgb <= 0.04045, srgb / 12.92, curve)


def _to_srgb(linear: torch.Tensor) -> torch.Tensor:
    curve = 1.055 * linear.clamp(min=0.0031308) ** (1 / 2.4) - 0.055
    return torch.where(linear <= 0.0031308, 12.92 * linear.clamp(min=0.0), curve)
