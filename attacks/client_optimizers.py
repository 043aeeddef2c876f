"""The client's optimiser replayed functionally, so the attack can differentiate through it.

Each replay follows torch's own update rule for the settings an Observation records, starting
from a fresh state (clients build a new optimiser every round).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fedsim.observation import Observation

Params = dict[str, torch.Tensor]
Step = Callable[[Params, Params, object, int], tuple[Params, object]]
"""(weights, gradients, optimiser state or None, step number from 1) → (new weights, state)."""

ADAM_BETAS, ADAM_EPS = (0.9, 0.999), 1e-8


def client_step(observation: Observation) -> Step:
    """The update rule of the observed client's optimiser, with its lr and weight decay."""
    lr, decay = observation.lr, observation.weight_decay
    if observation.optimizer == "adam":
        return _adam(lr, decay)
    return _sgd(lr, observation.momentum, decay)


def _sgd(lr: float, momentum: float, decay: float) -> Step:
    """torch's SGD: d = g + decay·w; b = d on the first step, momentum·b + d after; w − lr·b."""

    def step(params: Params, grads: Params, velocity: object, _: int) -> tuple[Params, object]:
        direction = {n: grads[n] + decay * params[n] for n in grads} if decay else grads
        if velocity is not None:
            direction = {n: momentum * velocity[n] + direction[n] for n in grads}
        return {n: params[n] - lr * direction[n] for n in grads}, direction

    return step


def _adam(lr: float, decay: float) -> Step:
    """torch's Adam (betas 0.9, 0.999, eps 1e-8, decay as an L2 term on the gradient)."""
    beta1, beta2 = ADAM_BETAS

    def step(params: Params, grads: Params, moments: object, t: int) -> tuple[Params, object]:
        first, second = moments if moments is not None else ({}, {})
        new_params, new_first, new_second = {}, {}, {}
        for n, g in grads.items():
            if decay:
                g = g + decay * params[n]
            m = (beta1 * first[n] if first else 0) + (1 - beta1) * g
            v = (beta2 * second[n] if second else 0) + (1 - beta2) * g * g
            denom = _sqrt(v) / (1 - beta2**t) ** 0.5 + ADAM_EPS
            new_params[n] = params[n] - lr / (1 - beta1**t) * m / denom
            new_first[n], new_second[n] = m, v
        return new_params, (new_first, new_second)

    return step


def _sqrt(values: torch.Tensor) -> torch.Tensor:
    """sqrt with a zero (not infinite) derivative where a gradient entry is exactly zero."""
    positive = values > 0
    return torch.where(positive, values, torch.ones_like(values)).sqrt() * positive
