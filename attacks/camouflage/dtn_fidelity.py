"""How closely the DTN predicts the renderer: MSE, PSNR, SSIM and ST-LPIPS of its predictions,
pasted over the reference scene as the attack pastes them, against the real renders."""

from __future__ import annotations

from attacks import metrics
from attacks.camouflage.dataset import Triplets
from attacks.camouflage.dtn import DTN, paste
from attacks.camouflage.dtn_training import car_mse, predict_flat


def dtn_fidelity(model: DTN, data: Triplets) -> dict[str, float | int]:
    """Means over every (view, colour) of ``data``: ``mse`` of whole images (pixels in [0, 1]),
    ``mse_car`` over car pixels only, ``psnr`` (dB), ``ssim``, ``st_lpips`` (lower is closer)."""
    views, per_view = data.colours.shape[:2]
    predicted = predict_flat(model, data).flatten(0, 1)
    real = data.renders.flatten(0, 1)
    masks = data.masks.repeat_interleave(per_view, dim=0)
    background = data.x_ref.repeat_interleave(per_view, dim=0)
    composed = paste(predicted, background, masks)
    return {
        "mse": float(((composed - real) ** 2).mean()),
        "mse_car": float(car_mse(predicted, real, masks)),
        "psnr": float(metrics.psnr(composed, real).mean()),
        "ssim": float(metrics.ssim(composed, real).mean()),
        "st_lpips": float(metrics.st_lpips(composed, real).mean()),
        "pairs": views * per_view,
    }
