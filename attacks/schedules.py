"""Learning-rate factors as a function of progress through the budget, in [0, 1]."""

from __future__ import annotations

import math
from collections.abc import Callable

Schedule = Callable[[float], float]


def _constant(progress: float) -> float:
    return 1.0


def _step(progress: float) -> float:
    """Divide by 10 at 3/8, 5/8 and 7/8 of the budget (Geiping et al. 2020)."""
    return 0.1 ** sum(progress >= m for m in (3 / 8, 5 / 8, 7 / 8))


def _cosine(progress: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


SCHEDULES: dict[str, Schedule] = {"constant": _constant, "step": _step, "cosine": _cosine}
