"""How closely the DTN predicts the renderer: MSE, PSNR, SSIM and ST-LPIPS of its predictions,
pasted over the reference scene as the attack pastes them, against the real renders."""

from __future__ import annotations

import torch

from attacks import metrics
from attacks.camouflage.dataset import Triplets
from attacks.camouflage.dtn import DTN, paste
from attacks.camouflage.dtn_training import car_mse, flat_eta, predict
from attacks.camouflage.pattern_renders import PatternRenders

Pairs = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]
"""(x_ref, masks, etas, real renders) of N pairs, as :func:`fidelity` takes them."""


def flat_pairs(data: Triplets) -> Pairs:
    """Every (view, flat colour) pair of ``data``."""
    per_view = data.colours.shape[1]
    masks = data.masks.repeat_interleave(per_view, dim=0)
    etas = flat_eta(data.colours.flatten(0, 1), masks)
    x_ref = data.x_ref.repeat_interleave(per_view, dim=0)
    return x_ref, masks, etas, data.renders.flatten(0, 1)


def pattern_pairs(data: PatternRenders) -> Pairs:
    """Every (view, textured pattern) pair of ``data``."""
    per_view = data.patterns.shape[1]
    masks = data.masks.repeat_interleave(per_view, dim=0)
    x_ref = data.x_ref.repeat_interleave(per_view, dim=0)
    return x_ref, masks, data.etas.flatten(0, 1), data.renders.flatten(0, 1)


def flat_fidelity(model: DTN, data: Triplets) -> dict[str, float | int]:
    """:func:`fidelity` over every (view, flat colour) pair of ``data``."""
    return fidelity(model, *flat_pairs(data))


def pattern_fidelity(model: DTN, data: PatternRenders) -> dict[str, float | int]:
    """:func:`fidelity` over every (view, textured pattern) pair of ``data``."""
    return fidelity(model, *pattern_pairs(data))


def fidelity(
    model: DTN, x_ref: torch.Tensor, masks: torch.Tensor, etas: torch.Tensor, real: torch.Tensor
) -> dict[str, float | int]:
    """Means over N pairs of the DTN's prediction pasted over x_ref's scene vs the real render:
    ``mse`` of whole images (pixels in [0, 1]), ``mse_car`` over car pixels only, ``psnr`` (dB),
    ``ssim``, ``st_lpips`` (lower is closer), and ``pairs`` = N."""
    predicted = predict(model, x_ref, masks, etas)
    pasted = paste(predicted, x_ref, masks)
    return {
        "mse": float(((pasted - real) ** 2).mean()),
        "mse_car": float(car_mse(predicted, real, masks)),
        "psnr": float(metrics.psnr(pasted, real).mean()),
        "ssim": float(metrics.ssim(pasted, real).mean()),
        "st_lpips": float(metrics.st_lpips(pasted, real).mean()),
        "pairs": len(real),
    }
