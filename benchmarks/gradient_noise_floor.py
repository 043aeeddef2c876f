"""Can a noisy gradient still rank an attack's candidates? The cosine distance the *true*
gradient itself would have to the observed one, beside the distances a cell's search reached.

    .venv/bin/python benchmarks/gradient_noise_floor.py runs/CAMPAIGN/cells/ID [ID ...]

Each argument is a bench cell folder of an attack on an update with Gaussian noise recorded
(``gaussian:std=σ`` among its defenses). The observed gradient is o = g + n, n ~ N(0, s²) in each
of its d coordinates (s = σ, or σ/lr for a weights update), so |g|² ≈ |o|² − d·s² (standard
error s²·√(2d)) and the true gradient's own cosine distance to o is about 1 − |g|/|o|: the
noise floor. A candidate whose distance is within the floor's interval fits the observation as
well as the truth does, and the gradient loss cannot tell it from the truth, or from another
such candidate. Per cell, one JSON line: the floor, its interval (± 2 standard errors of |g|²),
and the cell's ``stage_distances`` (each stage's lowest distance; one for a pixel search).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from per_cell import print_per_cell

from defenses.specs import parse_defenses
from fedsim.observation import Observation


def _floor(observed_sq: float, noise_sq: float) -> float:
    """1 − |g|/|o| with |g|² = |o|² − noise² (clamped at 0: a gradient all noise)."""
    return 1 - math.sqrt(_signal_share(observed_sq, noise_sq))


def _signal_share(observed_sq: float, noise_sq: float) -> float:
    """|g|²/|o|², the true gradient's share of the observed one's energy."""
    return max(observed_sq - noise_sq, 0.0) / observed_sq


def noise_floor(cell: Path) -> dict:
    """The noise floor of one cell's observation and the distances its search reached."""
    observation = Observation.load(cell / "observation.safetensors")
    metrics = json.loads((cell / "metrics.json").read_text())
    attack = json.loads((cell / "config.json").read_text())["attack"]["name"]
    specs = parse_defenses(observation.defenses, "attack")
    stds = [spec.params.std for spec in specs if spec.name == "gaussian"]
    result: dict[str, object] = {"cell": str(cell), "attack": attack}
    if not stds:
        return {**result, "floor": None, "why": f"no Gaussian noise in {observation.defenses}"}
    scale = stds[0] if observation.update_kind == "gradient" else stds[0] / observation.lr
    gradient = observation.gradient()
    coordinates = sum(t.numel() for t in gradient.values())
    observed_sq = float(sum((t.double() ** 2).sum() for t in gradient.values()))
    noise_sq, error = coordinates * scale**2, 2 * scale**2 * math.sqrt(2 * coordinates)
    return {
        **result,
        "signal_share": round(_signal_share(observed_sq, noise_sq), 5),
        "floor": round(_floor(observed_sq, noise_sq), 5),
        "floor_interval": [
            round(_floor(observed_sq, noise_sq - error), 5),
            round(_floor(observed_sq, noise_sq + error), 5),
        ],
        "stage_distances": [round(d, 5) for d in metrics["stage_distances"]],
    }


if __name__ == "__main__":
    print_per_cell(__doc__.splitlines()[0], noise_floor)
