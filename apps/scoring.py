"""Score a Reconstruction against the client's GroundTruth: the only place both meet."""

from __future__ import annotations

import math
import statistics
from dataclasses import dataclass

import torch

from attacks import metrics
from attacks.reconstruction import Reconstruction
from fedsim.ground_truth import GroundTruth


@dataclass(frozen=True)
class Scores:
    """Per-image metrics, in ground-truth order, after pairing reconstructions by best match."""

    psnr: tuple[float, ...]
    ssim: tuple[float, ...]
    lpips: tuple[float, ...] | None
    lpips_unavailable: str | None
    st_lpips: tuple[float, ...]
    label_accuracy: float
    pairing: tuple[int, ...]

    def summary(self) -> dict[str, float | str | None]:
        """Batch medians (PSNR in dB; SSIM; LPIPS and ST-LPIPS, lower is closer), JSON-ready."""
        return {
            "psnr": _json_number(statistics.median(self.psnr)),
            "ssim": statistics.median(self.ssim),
            "lpips": None if self.lpips is None else statistics.median(self.lpips),
            "lpips_unavailable": self.lpips_unavailable,
            "st_lpips": statistics.median(self.st_lpips),
            "label_accuracy": self.label_accuracy,
        }

    def per_image(self) -> dict[str, list]:
        """Every per-image value, JSON-ready (an exact reconstruction's infinite PSNR is null)."""
        return {
            "psnr": [_json_number(v) for v in self.psnr],
            "ssim": list(self.ssim),
            "lpips": None if self.lpips is None else list(self.lpips),
            "st_lpips": list(self.st_lpips),
            "pairing": list(self.pairing),
        }


def score(reconstruction: Reconstruction, truth: GroundTruth) -> Scores:
    """Pair the batch by best match, then compute PSNR, SSIM, LPIPS, ST-LPIPS and label accuracy."""
    pairing = metrics.pair_by_best_match(reconstruction.images, truth.images)
    rec, ref = reconstruction.images[pairing], truth.images
    lpips = metrics.lpips_alex(rec, ref)
    return Scores(
        psnr=_floats(metrics.psnr(rec, ref)),
        ssim=_floats(metrics.ssim(rec, ref)),
        lpips=None if lpips.values is None else _floats(lpips.values),
        lpips_unavailable=lpips.reason,
        st_lpips=_floats(metrics.st_lpips(rec, ref)),
        label_accuracy=metrics.label_accuracy(reconstruction.labels, truth.labels),
        pairing=tuple(int(i) for i in pairing),
    )


def random_guess_psnr(truth: GroundTruth, seed: int) -> float:
    """Median PSNR (dB, pixels in [0, 1]) of uniform-noise images (seeded) against the client's
    images: the score of an attacker who learned nothing."""
    noise = torch.rand(truth.images.shape, generator=torch.Generator().manual_seed(seed))
    return statistics.median(_floats(metrics.psnr(noise, truth.images)))


def _floats(values: torch.Tensor) -> tuple[float, ...]:
    return tuple(float(v) for v in values)


def _json_number(value: float) -> float | None:
    return value if math.isfinite(value) else None
