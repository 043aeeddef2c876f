"""Repeated texture projection: periodic, wrapped at the seams, differentiable in the pattern."""

from __future__ import annotations

import numpy as np
import torch

from attacks.camouflage.renderer.render import linear_to_srgb, srgb_to_linear
from attacks.camouflage.texture import (
    Jitter,
    paint_samples,
    project_texture,
    sample_jitter,
    sample_texture,
    surface_etas,
    tile_pattern,
)


def test_tiling_repeats_with_the_pattern_period() -> None:
    pattern = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(0))
    # 4 periods across 64 pixels: one period is 16 pixels, one pixel per texel.
    image = tile_pattern(pattern, 64, Jitter(scale=4.0))

    assert image.shape == (3, 64, 64)
    torch.testing.assert_close(image[:, :, :16], image[:, :, 16:32])
    torch.testing.assert_close(image[:, :16], image[:, 48:])
    torch.testing.assert_close(image[:, :16, :16], pattern)


def test_a_shift_of_one_texel_moves_the_image_by_one_pixel() -> None:
    pattern = torch.rand(3, 16, 16, generator=torch.Generator().manual_seed(1))
    base = tile_pattern(pattern, 32, Jitter(scale=2.0))
    shifted = tile_pattern(pattern, 32, Jitter(shift=(1 / 16, 0.0), scale=2.0))

    torch.testing.assert_close(shifted[:, :, :-1], base[:, :, 1:])


def test_seams_wrap_instead_of_clamping() -> None:
    pattern = torch.zeros(3, 4, 4)
    pattern[:, :, 0] = 1.0  # the first column lit, the last dark
    # Pixel centres sit at x = -0.375, -0.125, ... of the image width: this shift puts the first
    # one on the pattern's left edge, halfway between the last texel's centre and the first's.
    image = tile_pattern(pattern, (1, 4), Jitter(shift=(0.375, 0.0), scale=1.0))

    torch.testing.assert_close(image[:, 0, 0], torch.full((3,), 0.5))  # clamping would give 1


def test_rotation_and_scale_keep_values_in_range_and_jitter_is_seeded() -> None:
    pattern = torch.rand(3, 16, 16)
    jitter = sample_jitter(torch.Generator().manual_seed(3))
    image = tile_pattern(pattern, 48, jitter)

    assert jitter == sample_jitter(torch.Generator().manual_seed(3))
    assert abs(jitter.rotation_deg) <= 20 and 6 <= jitter.scale <= 10
    assert pattern.min() <= image.min() and image.max() <= pattern.max()


def test_projection_is_differentiable_in_the_pattern() -> None:
    pattern = torch.rand(3, 4, 4, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(10, 12, dtype=torch.float64)
    mask[2:8, 3:11] = 1.0
    jitter = Jitter(shift=(0.3, 0.7), scale=2.7, rotation_deg=17.0)

    assert torch.autograd.gradcheck(lambda p: project_texture(p, mask, jitter), (pattern,))
    projected = project_texture(pattern, mask, jitter)
    assert torch.all(projected[:, mask == 0] == 0)
    projected.sum().backward()
    assert torch.all(pattern.grad > 0)  # every texel shows somewhere inside the mask


def test_sampling_at_texture_coordinates_wraps_and_is_differentiable() -> None:
    pattern = torch.rand(3, 4, 4, dtype=torch.float64, requires_grad=True)
    uv = torch.rand(6, 5, 2, dtype=torch.float64) * 3 - 1  # several repeats either side

    torch.testing.assert_close(sample_texture(pattern, uv), sample_texture(pattern, uv + 2))
    # The centre of texel (row 1, column 2) reads that texel alone.
    centre = torch.tensor([[[2.5 / 4, 1.5 / 4]]], dtype=torch.float64)
    torch.testing.assert_close(sample_texture(pattern, centre)[:, 0, 0], pattern[:, 1, 2])
    assert torch.autograd.gradcheck(lambda p: sample_texture(p, uv), (pattern,))


def test_a_uniform_pattern_paints_the_flat_colours_eta() -> None:
    colour = torch.tensor([0.2, 0.5, 0.9])
    uv = torch.rand(8, 8, 2) * 4
    paint = (torch.rand(8, 8) > 0.3).float()
    mask = torch.clamp(paint + (torch.rand(8, 8) > 0.5).float() * 0.5, max=1.0)
    uniform = colour[:, None, None].expand(3, 16, 16)

    eta = surface_etas(uniform, [paint_samples(uv, paint, 1)], mask[None])[0]
    torch.testing.assert_close(eta, colour[:, None, None] * mask)
    stripes = torch.zeros(3, 16, 16)
    stripes[:, :, ::2] = 1.0
    off_paint = (paint == 0) & (mask > 0)
    # Black and white texels blend in linear light, as the renderer blends them: sRGB 0.735.
    grey = float(linear_to_srgb(np.float32(0.5)))
    torch.testing.assert_close(
        surface_etas(stripes, [paint_samples(uv, paint, 1)], mask[None])[0][:, off_paint],
        grey * mask[off_paint].expand(3, -1),
    )


def test_a_finer_surface_grid_is_averaged_per_pixel() -> None:
    pattern = torch.rand(3, 16, 16)
    uv = torch.rand(8, 8, 2) * 4
    paint = (torch.rand(8, 8) > 0.3).float()
    mask = torch.rand(4, 4)

    fine = surface_etas(pattern, [paint_samples(uv, paint, 1)], torch.ones(1, 8, 8))[0]
    eta = surface_etas(pattern, [paint_samples(uv, paint, 2)], mask[None])[0]

    linear = torch.from_numpy(srgb_to_linear(fine.numpy()))
    pooled = linear.unfold(1, 2, 2).unfold(2, 2, 2).mean((-1, -2))
    torch.testing.assert_close(eta, torch.from_numpy(linear_to_srgb(pooled.numpy())) * mask)
    # Black texels (sRGB 0) keep finite gradients through the transfer function.
    dark = pattern.clone()
    dark[:, ::2] = 0.0
    dark.requires_grad_(True)
    surface_etas(dark, [paint_samples(uv, paint, 2)], mask[None]).sum().backward()
    assert torch.isfinite(dark.grad).all() and dark.grad.abs().sum() > 0


def test_views_read_together_as_each_alone() -> None:
    pattern = torch.rand(3, 16, 16)
    surfaces = [(torch.rand(8, 8, 2) * 4, (torch.rand(8, 8) > 0.3).float()) for _ in range(3)]
    masks = torch.rand(3, 4, 4)

    together = surface_etas(pattern, [paint_samples(uv, paint, 2) for uv, paint in surfaces], masks)

    for view, (uv, paint) in enumerate(surfaces):
        alone = surface_etas(pattern, [paint_samples(uv, paint, 2)], masks[view : view + 1])
        torch.testing.assert_close(together[view], alone[0])
