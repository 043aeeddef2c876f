"""DP-SGD through Opacus: a client's private local training, its ε carried across rounds.

The client's batches are the ones fedsim chose (so ground truth stays exact): Opacus runs with
``poisson_sampling=False`` and the accountant is stepped at the rate a batch samples the
client's partition, q = batch size / partition size. That is the usual shuffled-batches
approximation of the Poisson-sampling RDP analysis, as in most DP-SGD training code.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from flwr.app import ConfigRecord, RecordDict
from opacus import PrivacyEngine
from opacus.accountants import RDPAccountant
from opacus.grad_sample import GradSampleModule
from opacus.optimizers import DPOptimizer
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from defenses.specs import DpSgd
from fedsim.data import DatasetSpec, normalize
from fedsim.flower.defense_hooks import LocalTrainer
from fedsim.flower.local_training import client_optimizer
from fedsim.observation import ClientOptimizer

STATE_KEY = "dp-sgd-accountant"
"""Where a client keeps its accountant's history in Flower's ``Context.state``."""
EPSILON_METRIC = "dp-epsilon"


def load_accountant(state: RecordDict) -> RDPAccountant:
    """The client's RDP accountant as the last round left it (empty in round 1)."""
    accountant = RDPAccountant()
    if STATE_KEY in state:
        record = state[STATE_KEY]
        accountant.history = [
            (float(sigma), float(rate), int(steps))
            for sigma, rate, steps in zip(
                record["noise"], record["rate"], record["steps"], strict=True
            )
        ]
    return accountant


def save_accountant(state: RecordDict, accountant: RDPAccountant) -> None:
    """Keep the accountant's history in the client's state for the next round."""
    history = accountant.history
    state[STATE_KEY] = ConfigRecord(
        {
            "noise": [float(sigma) for sigma, _, _ in history],
            "rate": [float(rate) for _, rate, _ in history],
            "steps": [int(steps) for _, _, steps in history],
        }
    )


def dp_sgd_trainer(params: DpSgd) -> LocalTrainer:
    """A :class:`LocalTrainer` running the client's steps as Opacus DP-SGD; reports ε."""

    def train(
        model: nn.Module,
        batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
        dataset: DatasetSpec,
        *,
        lr: float,
        train_mode: bool,
        optimizer: ClientOptimizer,
        momentum: float,
        weight_decay: float,
        partition_size: int,
        state: RecordDict,
    ) -> dict[str, float]:
        accountant = load_accountant(state)
        images = normalize(torch.cat([images for images, _ in batches]), dataset)
        labels = torch.cat([labels for _, labels in batches])
        sizes = [len(batch_labels) for _, batch_labels in batches]
        starts = [sum(sizes[:i]) for i in range(len(sizes))]
        loader = DataLoader(
            TensorDataset(images, labels),
            batch_sampler=[list(range(s, s + n)) for s, n in zip(starts, sizes, strict=True)],
        )
        # Opacus records activations in train mode only; DP models hold no BatchNorm, so
        # ``train_mode`` changes nothing here, and dropout draws as it does in train mode.
        model.train()
        private, dp_optimizer, loader = PrivacyEngine().make_private(
            module=model,
            optimizer=client_optimizer(model, optimizer, lr, momentum, weight_decay),
            data_loader=loader,
            noise_multiplier=params.noise_multiplier,
            max_grad_norm=params.max_grad_norm,
            poisson_sampling=False,
        )
        # Our accountant, stepped at the rate a batch samples the partition (see module doc).
        dp_optimizer.attach_step_hook(
            accountant.get_optimizer_hook_fn(sample_rate=sizes[0] / partition_size)
        )
        for batch_images, batch_labels in loader:
            dp_optimizer.zero_grad()
            nn.functional.cross_entropy(private(batch_images), batch_labels).backward()
            dp_optimizer.step()
        private._close()  # remove Opacus' hooks: the plain model goes on to be sent
        save_accountant(state, accountant)
        return {EPSILON_METRIC: float(accountant.get_epsilon(params.delta))}

    return train


def dp_gradient(
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    params: DpSgd,
    generator: torch.Generator,
) -> tuple[dict[str, torch.Tensor], float]:
    """One DP-SGD gradient of a normalised batch (per-example clipping, Gaussian noise) and the
    ε of releasing it once (sample rate 1)."""
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    wrapped = GradSampleModule(model)
    dp_optimizer = DPOptimizer(
        torch.optim.SGD([p for _, p in named], lr=0.0),
        noise_multiplier=params.noise_multiplier,
        max_grad_norm=params.max_grad_norm,
        expected_batch_size=len(labels),
        generator=generator,
    )
    dp_optimizer.zero_grad()
    nn.functional.cross_entropy(wrapped(inputs), labels).backward()
    dp_optimizer.pre_step()
    gradient = {name: p.grad.detach().clone() for name, p in named}
    wrapped._close()
    accountant = RDPAccountant()
    accountant.step(noise_multiplier=params.noise_multiplier, sample_rate=1.0)
    return gradient, float(accountant.get_epsilon(params.delta))
