"""Learning-rate factors: functions of progress through the budget, in [0, 1], and a plateau
tracker that cuts the rate when the loss stalls."""

from __future__ import annotations

import math
from collections.abc import Callable

from attacks.config import AttackConfig

Schedule = Callable[[float], float]


def _constant(progress: float) -> float:
    return 1.0


def _step(progress: float) -> float:
    """Divide by 10 at 3/8, 5/8 and 7/8 of the budget (Geiping et al. 2020)."""
    return 0.1 ** sum(progress >= m for m in (3 / 8, 5 / 8, 7 / 8))


def _cosine(progress: float) -> float:
    return 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))


SCHEDULES: dict[str, Schedule] = {
    "constant": _constant,
    "step": _step,
    "cosine": _cosine,
    "plateau": _constant,  # its cuts come from Plateau, which follows the loss, not the budget
}


class Plateau:
    """Divide the lr by 10 when the loss stalls, and stop when it stalls for long.

    Patience is a fraction of the ``budget`` in iterations (``plateau_patience``,
    ``early_stop``), so a preset keeps its shape when its budget changes (Scheliga et al.: 800
    and 4,000 of 20,000).
    """

    def __init__(self, config: AttackConfig, budget: int, *, active: bool) -> None:
        self.cut_after = max(1, round(config.plateau_patience * budget)) if active else 0
        self.stop_after = max(1, round(config.early_stop * budget)) if config.early_stop else 0
        self.factor, self.stopped = 1.0, False
        self.best, self.best_at, self.cut_at = float("inf"), 0, 0

    def update(self, loss: float, iteration: int) -> None:
        """Record the loss after ``iteration`` steps; cut the lr or stop if it has stalled."""
        if loss < self.best * (1 - 1e-4):
            self.best, self.best_at = loss, iteration
        stalled = iteration - max(self.best_at, self.cut_at)
        if self.cut_after and stalled >= self.cut_after:
            self.factor, self.cut_at = self.factor * 0.1, iteration
        self.stopped = bool(self.stop_after) and iteration - self.best_at >= self.stop_after
