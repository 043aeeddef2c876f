"""Comparison grids: every image upscaled to at least 128 px, with labelled margins."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from apps.grids import MIN_IMAGE_PX, comparison_grid, upscale_factor


@pytest.mark.parametrize(("side", "factor"), [(32, 4), (28, 5), (64, 2), (200, 1)])
def test_the_factor_brings_the_shorter_side_to_128_px(side: int, factor: int) -> None:
    assert upscale_factor(side, side + 10) == factor
    assert side * factor >= MIN_IMAGE_PX


def test_images_are_upscaled_nearest_neighbour_into_their_rows() -> None:
    torch.manual_seed(0)
    originals, reconstructions = torch.rand(3, 3, 32, 32), torch.rand(3, 3, 32, 32)

    grid = np.asarray(comparison_grid(originals, reconstructions, [20.0, None, 31.25]))

    height, width, _ = grid.shape
    assert width >= 3 * 128 and height >= 2 * 128
    # Find the first original's block: a 4×4 block of equal pixels per source pixel.
    expected = originals[0].mul(255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    block = expected.repeat(4, axis=0).repeat(4, axis=1)
    rows, cols = np.nonzero((grid[:, :, 0] == block[0, 0, 0]).astype(int))
    found = any(
        np.array_equal(grid[r : r + 128, c : c + 128], block)
        for r, c in zip(rows, cols, strict=True)
        if r + 128 <= height and c + 128 <= width
    )
    assert found


def test_the_margins_hold_labels_and_a_psnr_only_when_given() -> None:
    images = torch.zeros(1, 3, 32, 32)

    labelled = np.asarray(comparison_grid(images, images, [25.0]))
    unlabelled = np.asarray(comparison_grid(images, images))

    bottom_strip = slice(labelled.shape[0] - 18, labelled.shape[0])
    assert (labelled[bottom_strip] < 128).any()  # ink of "PSNR 25.0 dB"
    assert (unlabelled[bottom_strip] == 255).all()
    assert (labelled[:15] < 128).any()  # ink of "original" above the first row


def test_mismatched_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="originals vs"):
        comparison_grid(torch.zeros(2, 3, 8, 8), torch.zeros(1, 3, 8, 8))
