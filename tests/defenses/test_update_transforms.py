"""What a client does to its update before sending it keeps its stated invariants."""

from __future__ import annotations

import math

import pytest
import torch

from defenses.specs import parse_defenses
from defenses.update_transforms import add_gaussian, clip, prune, quantize, update_transform


@pytest.fixture
def update() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {
        "conv.weight": torch.randn(16, 3, 5, 5, generator=generator),
        "fc.weight": torch.randn(10, 400, generator=generator) * 0.01,
        "fc.bias": torch.randn(10, generator=generator),
    }


def norm(update: dict[str, torch.Tensor]) -> float:
    return math.sqrt(sum(float((t.double() ** 2).sum()) for t in update.values()))


def test_clip_bounds_the_whole_norm_and_keeps_the_direction(update) -> None:
    clipped = clip(update, max_norm=1.0)
    assert norm(clipped) == pytest.approx(1.0, rel=1e-6)
    scale = clipped["fc.bias"] / update["fc.bias"]
    assert torch.allclose(scale, scale[0].expand_as(scale))
    assert clip(update, max_norm=1e6)["conv.weight"].equal(update["conv.weight"])


def test_gaussian_noise_has_the_configured_scale(update) -> None:
    zeros = {"w": torch.zeros(200_000)}
    noise = add_gaussian(zeros, torch.Generator().manual_seed(1), std=0.03)["w"]
    assert float(noise.std()) == pytest.approx(0.03, rel=0.01)
    assert abs(float(noise.mean())) < 0.03 * 5 / math.sqrt(200_000)


@pytest.mark.parametrize("fraction", [0.5, 0.9, 0.99])
def test_prune_zeroes_exactly_the_smallest_magnitudes(update, fraction: float) -> None:
    pruned = prune(update, fraction)
    for name, tensor in update.items():
        k = int(fraction * tensor.numel())
        zeroed = pruned[name] == 0
        assert int(zeroed.sum()) == k
        kept, dropped = tensor[~zeroed].abs(), tensor[zeroed].abs()
        assert k == 0 or float(kept.min()) >= float(dropped.max())
        assert pruned[name][~zeroed].equal(tensor[~zeroed])


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_quantize_uses_at_most_two_to_the_bits_levels_within_range(update, bits: int) -> None:
    quantized = quantize(update, torch.Generator().manual_seed(2), bits=bits)
    for name, tensor in update.items():
        values = quantized[name]
        assert len(torch.unique(values)) <= 2**bits
        assert float(values.min()) >= float(tensor.min()) - 1e-6
        assert float(values.max()) <= float(tensor.max()) + 1e-6


def test_quantize_is_unbiased() -> None:
    update = {"w": torch.linspace(-1, 1, 101)}
    generator = torch.Generator().manual_seed(3)
    draws = torch.stack([quantize(update, generator, bits=1)["w"] for _ in range(4000)])
    # One bit: each entry is -1 or 1 with the probability that keeps its mean; std of the
    # mean of 4,000 draws is at most 1/sqrt(4000) ≈ 0.016.
    assert torch.allclose(draws.mean(0), update["w"], atol=0.07)


def test_transforms_compose_in_the_order_given(update) -> None:
    specs = parse_defenses(["prune:fraction=0.9", "clip:max_norm=0.5"], "simulate")
    transformed = update_transform(specs)(update, torch.Generator().manual_seed(0))
    assert norm(transformed) == pytest.approx(0.5, rel=1e-6)
    zero_share = sum(int((t == 0).sum()) for t in transformed.values()) / sum(
        t.numel() for t in update.values()
    )
    assert zero_share == pytest.approx(0.9, abs=0.01)
    assert (
        update_transform(parse_defenses(["dp-sgd:noise_multiplier=1,max_grad_norm=1"], "attack"))
        is None
    )
