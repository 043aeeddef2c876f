"""Can a noisy gradient still rank an attack's candidates? The cosine distance the *true*
gradient itself would have to the observed one, beside the distances a cell's search reached.

    .venv/bin/python benchmarks/gradient_noise_floor.py runs/CAMPAIGN/cells/ID [ID ...]

Each argument is a bench cell folder of an attack on an update with Gaussian noise recorded
(``gaussian:std=σ`` among its defenses); the floor is :func:`attacks.noise_floor.noise_floor`
(about 1 − |g|/|o|, with |g|² ≈ |o|² − d·s²). A candidate whose distance is within the floor's
interval fits the observation as well as the truth does, and the gradient loss cannot tell it
from the truth, or from another such candidate. Per cell, one JSON line: the floor, its
interval (± 2 standard errors of |g|²), and the cell's ``stage_distances`` (each stage's lowest
distance; one for a pixel search).
"""

from __future__ import annotations

import json
from pathlib import Path

from per_cell import print_per_cell

from attacks.noise_floor import noise_floor as observation_noise_floor
from fedsim.observation import Observation


def noise_floor(cell: Path) -> dict:
    """The noise floor of one cell's observation and the distances its search reached."""
    observation = Observation.load(cell / "observation.safetensors")
    metrics = json.loads((cell / "metrics.json").read_text())
    attack = json.loads((cell / "config.json").read_text())["attack"]["name"]
    result: dict[str, object] = {"cell": str(cell), "attack": attack}
    floor = observation_noise_floor(observation)
    if floor is None:
        return {**result, "floor": None, "why": f"no Gaussian noise in {observation.defenses}"}
    return {
        **result,
        "signal_share": round(floor.signal_share, 5),
        "floor": round(floor.floor, 5),
        "floor_interval": [round(floor.low, 5), round(floor.high, 5)],
        "stage_distances": [round(d, 5) for d in metrics["stage_distances"]],
    }


if __name__ == "__main__":
    print_per_cell(__doc__.splitlines()[0], noise_floor)
