"""Image metrics on [0, 1] pixels: PSNR, SSIM, both LPIPS variants, batch pairing, labels."""

from __future__ import annotations

import math

import pytest
import torch

from attacks.metrics import (
    OptionalMetric,
    label_accuracy,
    lpips_alex,
    pair_by_best_match,
    psnr,
    ssim,
    st_lpips,
)
from fedsim.errors import UserInputError


@pytest.fixture
def images() -> torch.Tensor:
    """Four smooth random RGB images in [0.1, 0.9], so a 0.1 offset stays inside [0, 1]."""
    generator = torch.Generator().manual_seed(0)
    coarse = torch.rand(4, 3, 8, 8, generator=generator)
    return 0.1 + 0.8 * torch.nn.functional.interpolate(coarse, size=32, mode="bilinear")


def _noisy(images: torch.Tensor, sigma: float) -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return (images + sigma * torch.randn(images.shape, generator=generator)).clamp(0, 1)


def test_psnr_of_constant_offset_is_20_db(images: torch.Tensor) -> None:
    values = psnr(images + 0.1, images)

    assert values.shape == (4,)
    assert torch.allclose(values, torch.full((4,), 20.0), atol=1e-3)


def test_psnr_is_per_image_and_infinite_for_identical_images(images: torch.Tensor) -> None:
    rec = images.clone()
    rec[1] += 0.1

    values = psnr(rec, images)

    assert math.isinf(values[0]) and values[0] > 0
    assert values[1] == pytest.approx(20.0, abs=1e-3)


def test_ssim_is_one_for_identical_and_falls_with_noise(images: torch.Tensor) -> None:
    same = ssim(images, images)
    slightly = ssim(_noisy(images, 0.05), images)
    very = ssim(_noisy(images, 0.3), images)

    assert same.shape == (4,)
    assert torch.allclose(same, torch.ones(4))
    assert torch.all(slightly < same) and torch.all(very < slightly)


def test_metrics_reject_mismatched_shapes(images: torch.Tensor) -> None:
    with pytest.raises(UserInputError, match="one shape"):
        psnr(images, images[:2])


def test_st_lpips_is_zero_for_identical_and_positive_for_noise(images: torch.Tensor) -> None:
    rec = torch.stack([images[0], _noisy(images, 0.3)[0]])

    values = st_lpips(rec, images[:1].expand(2, -1, -1, -1))

    assert values.shape == (2,)
    assert values[0].abs() < 1e-6
    assert values[1] > 0.01


def test_st_lpips_accepts_small_greyscale_images() -> None:
    generator = torch.Generator().manual_seed(2)
    grey = torch.rand(2, 1, 28, 28, generator=generator)

    assert st_lpips(grey, grey.flip(0)).min() > 0


def test_lpips_alex_gives_real_values_or_a_reason(images: torch.Tensor) -> None:
    result = lpips_alex(images[:2], _noisy(images, 0.3)[:2])

    assert isinstance(result, OptionalMetric)
    if result.values is None:
        assert result.reason  # offline: the ImageNet AlexNet weights cannot be downloaded
    else:
        assert result.reason is None
        assert result.values.shape == (2,)
        assert torch.all(torch.isfinite(result.values)) and torch.all(result.values >= 0)
    assert lpips_alex(images[:2], images[:2]).reason == result.reason  # built (or refused) once


def test_optional_metric_holds_exactly_one_of_values_and_reason() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        OptionalMetric(values=None, reason=None)


def test_pairing_recovers_a_shuffled_batch(images: torch.Tensor) -> None:
    shuffle = torch.tensor([2, 0, 3, 1])
    rec = _noisy(images, 0.05)[shuffle]

    perm = pair_by_best_match(rec, images)

    assert perm.dtype == torch.long
    assert torch.equal(rec[perm], _noisy(images, 0.05))
    assert torch.equal(shuffle[perm], torch.arange(4))


def test_pairing_leaves_extra_reconstructions_unpaired(images: torch.Tensor) -> None:
    rec = torch.cat([torch.zeros(1, 3, 32, 32), images[[1, 0]]])

    assert pair_by_best_match(rec, images[:2]).tolist() == [2, 1]
    with pytest.raises(UserInputError, match="at least as many"):
        pair_by_best_match(images[:1], images)


@pytest.mark.parametrize(
    ("predicted", "true", "expected"),
    [
        ([3, 1, 2], [1, 2, 3], 1.0),
        ([1, 1, 2], [1, 2, 2], 2 / 3),
        ([1, 1, 1, 1], [1, 2], 0.5),
        ([], [4, 5], 0.0),
        (torch.tensor([7, 7]), torch.tensor([7, 7]), 1.0),
    ],
)
def test_label_accuracy_is_an_order_free_multiset_match(
    predicted: list[int], true: list[int], expected: float
) -> None:
    assert label_accuracy(predicted, true) == pytest.approx(expected)


def test_label_accuracy_needs_true_labels() -> None:
    with pytest.raises(UserInputError, match="at least one"):
        label_accuracy([1], [])
