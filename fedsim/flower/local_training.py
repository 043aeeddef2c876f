"""A client's local training: which images each step uses, and SGD or Adam steps on them."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from fedsim.data import DatasetSpec, normalize
from fedsim.models.dropout import client_mode
from fedsim.observation import ClientOptimizer


def step_indices(
    partition: np.ndarray,
    *,
    local_steps: int,
    batch_size: int,
    seed: int,
    server_round: int,
    partition_id: int,
    local_epochs: int = 0,
) -> list[list[int]]:
    """Dataset indices of each local step's batch, drawn from ``partition`` without replacement.

    The partition is shuffled by a generator seeded with (seed, round, partition id) and cut
    into consecutive batches; when the steps need more images than the partition holds, a
    fresh shuffle follows, like a new epoch. With ``local_epochs`` > 0 the client makes that
    many passes instead, each a fresh shuffle cut into ``len(partition) // batch_size`` full
    batches (the remainder of a pass is dropped, as ``DataLoader(drop_last=True)`` does).
    """
    rng = np.random.default_rng([seed, server_round, partition_id])
    if local_epochs:
        per_epoch = len(partition) // batch_size
        batches: list[list[int]] = []
        for _ in range(local_epochs):
            order = rng.permutation(partition).tolist()
            batches += [order[i * batch_size : (i + 1) * batch_size] for i in range(per_epoch)]
        return batches
    needed = local_steps * batch_size
    order: list[int] = []
    while len(order) < needed:
        order += rng.permutation(partition).tolist()
    return [order[step * batch_size : (step + 1) * batch_size] for step in range(local_steps)]


def dropout_seed(seed: int, server_round: int, partition_id: int) -> int:
    """Seed for torch's RNG during one client's local steps, so dropout masks are reproducible."""
    return int(np.random.SeedSequence([seed, server_round, partition_id]).generate_state(1)[0])


def defense_seed(seed: int, server_round: int, partition_id: int) -> int:
    """Seed for the randomness a client's defenses draw (noise, stochastic rounding)."""
    return int(np.random.SeedSequence([seed, server_round, partition_id, 1]).generate_state(1)[0])


def client_optimizer(
    model: nn.Module, optimizer: ClientOptimizer, lr: float, momentum: float, weight_decay: float
) -> torch.optim.Optimizer:
    """A fresh torch SGD (``momentum``, ``weight_decay``) or Adam (default betas and eps,
    ``weight_decay`` as an L2 term) over the model's parameters."""
    if optimizer == "adam":
        return torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)


def train_steps(
    model: nn.Module,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    dataset: DatasetSpec,
    *,
    lr: float,
    train_mode: bool,
    optimizer: ClientOptimizer = "sgd",
    momentum: float = 0.0,
    weight_decay: float = 0.0,
) -> list[float]:
    """One optimiser step (mean cross-entropy) per batch of [0, 1] pixels; return the losses.

    The optimiser is torch's SGD (``momentum``, ``weight_decay``) or Adam (default betas and
    eps, ``weight_decay`` as an L2 term), fresh for the round. BatchNorm follows
    ``train_mode``; dropout layers draw masks whenever their rate is > 0.
    """
    client_mode(model, train_mode)
    stepper = client_optimizer(model, optimizer, lr, momentum, weight_decay)
    losses = []
    for images, labels in batches:
        stepper.zero_grad()
        loss = nn.functional.cross_entropy(model(normalize(images, dataset)), labels)
        loss.backward()
        stepper.step()
        losses.append(loss.item())
    return losses
