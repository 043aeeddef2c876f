"""The noise floor of an observed update: how close the client's own, noise-free update would
come to what the server saw, in cosine distance.

The observed update is o = g + n with n ~ N(0, s²) in each of its d non-zero coordinates
(s = σ of the recorded ``gaussian`` defense, or σ/lr for a returned-weights update, which the
attacker reads as (global − returned)/lr; a coordinate a later defense zeroed carries no
noise). So |g|² ≈ |o|² − d·s² (the floor's ends: ± 2 standard errors, 2·s²·√(2d)), and the
true update's cosine distance to o is about 1 − |g|/|o|. A candidate at or under the floor
explains the observation as well as the truth does: a lower distance there is a better fit to
the noise, not to the image (the discrepancy principle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from defenses.specs import Gaussian, parse_defense
from fedsim.observation import Observation


@dataclass(frozen=True)
class NoiseFloor:
    """The true update's cosine distance to the observed one, and its ±2-standard-error ends."""

    floor: float
    low: float
    high: float
    signal_share: float
    """|g|²/|o|²: the client's update's share of the observed update's energy."""

    def describe(self) -> dict[str, float]:
        """The floor as config.json records it."""
        return {
            "floor": self.floor,
            "low": self.low,
            "high": self.high,
            "signal_share": self.signal_share,
        }


def _distance(observed_sq: float, noise_sq: float) -> float:
    """1 − |g|/|o| with |g|² = |o|² − noise² (clamped at 0: an update all noise)."""
    return 1 - math.sqrt(max(observed_sq - noise_sq, 0.0) / observed_sq)


def noise_std(observation: Observation) -> float | None:
    """The per-coordinate noise std of the observed update as the attacker reads it (None
    without a recorded ``gaussian`` defense)."""
    for text in observation.defenses:
        params = parse_defense(text, "attack").params
        if isinstance(params, Gaussian):
            unit = 1.0 if observation.update_kind == "gradient" else observation.lr
            return params.std / unit
    return None


def noise_floor(observation: Observation) -> NoiseFloor | None:
    """The observed update's noise floor, or None where no Gaussian noise is recorded."""
    scale = noise_std(observation)
    if scale is None:
        return None
    update = observation.gradient()
    coordinates = sum(int(t.count_nonzero()) for t in update.values())
    observed_sq = float(sum((t.double() ** 2).sum() for t in update.values()))
    if observed_sq == 0:
        return None
    noise_sq = coordinates * scale**2
    error = 2 * scale**2 * math.sqrt(2 * coordinates)
    return NoiseFloor(
        floor=_distance(observed_sq, noise_sq),
        low=_distance(observed_sq, noise_sq - error),
        high=_distance(observed_sq, noise_sq + error),
        signal_share=max(observed_sq - noise_sq, 0.0) / observed_sq,
    )
