"""The gradient-matching objective: how well a dummy batch explains an observed update."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_

from attacks.batch_statistics import (
    BATCH_NORMS,
    BatchNormTargets,
    batch_norm_layers,
    prior_targets,
    recorded_statistics,
)
from attacks.client_optimizers import client_step
from attacks.config import AttackConfig
from attacks.defense_replay import defense_replay
from attacks.dropout_masks import Masks, mask_rate_penalty
from attacks.objectives import OBJECTIVES
from attacks.priors import batch_statistics_distance, total_variation
from fedsim.models import build_model
from fedsim.models.dropout import dropout_layers, plugged_masks
from fedsim.observation import Observation

Objective = Callable[[torch.Tensor, torch.Tensor, Masks], tuple[torch.Tensor, torch.Tensor]]
"""(dummy images, soft labels, dropout masks) of one restart → (loss with priors, distance)."""
BatchStatistics = dict[str, tuple[torch.Tensor, torch.Tensor]]
"""Per BatchNorm layer, the channel mean and unbiased variance of its input in one forward."""


def attacker_model(observation: Observation) -> nn.Module:
    """The architecture the server knows, frozen, with BatchNorm in the client's mode.

    Dropout is off unless masks are plugged in: the client's own masks are unknown, and fresh
    random ones would only add noise (the IG baseline of Scheliga et al. runs it this way).
    """
    model = build_model(observation.model)
    model.load_state_dict(observation.global_state)
    model.train(observation.train_mode)
    for layer in dropout_layers(model).values():
        layer.eval()
    if observation.train_mode:
        # Train-mode batch norm normalises by batch statistics; dropping the running buffers
        # keeps the forward identical and free of in-place updates, which vmap forbids. Parts a
        # model keeps in eval mode (fusion's frozen trunks) keep their running statistics.
        for module in model.modules():
            if isinstance(module, BATCH_NORMS) and module.training:
                replace_all_batch_norm_modules_(module)
    return model.requires_grad_(False)


def batch_norm_targets(observation: Observation, config: AttackConfig) -> BatchNormTargets | None:
    """The BatchNorm prior's targets for the steps the attack replays (one under
    ``assume_fedsgd``), or None when the config has no BatchNorm prior."""
    if not config.bn_weight:
        return None
    steps = 1 if config.assume_fedsgd else observation.local_steps
    return prior_targets(replace(observation, local_steps=steps), config.bn_statistics)


def gradient_matching_objective(
    observation: Observation, config: AttackConfig, device: torch.device
) -> Objective:
    """Build the per-restart objective: update distance to the observation plus priors.

    Images are in the model's normalised input space, ``examples_seen`` of them in step order;
    soft labels are (images, classes) probabilities (one-hot when the labels are fixed); masks,
    per dropout layer, hold one mask per image in the same order (empty: dropout off). The
    client's optimiser (SGD or Adam, :mod:`attacks.client_optimizers`) is replayed on the dummy
    batch from the known lr, steps and batch size, unless ``config.assume_fedsgd`` asks for the
    naive view of the update as one gradient of all its images. With ``config.bn_weight``
    the BatchNorm layers' input statistics of each replayed step (at that step's weights, as
    the client computed them) are matched to :func:`attacks.batch_statistics.prior_targets`.
    """
    model = attacker_model(observation).to(device)
    names = observation.parameter_names()
    params = {n: observation.global_state[n].to(device) for n in names}
    # Buffers the server never sends (a frozen public trunk's) are the attacker's own copy.
    buffers = {n: observation.global_state.get(n, b).to(device) for n, b in model.named_buffers()}
    observed = observation.gradient()
    target = [observed[n].to(device) for n in names]
    replay = defense_replay(observation, target) if config.defense_aware else None
    distance = OBJECTIVES[config.objective]
    steps = 1 if config.assume_fedsgd else observation.local_steps
    step_size, lr = observation.examples_seen // steps, observation.lr
    decay, rate = observation.weight_decay, observation.model.dropout
    # One SGD step's update is its direction, gradient plus decay: skip the round trip
    # through the weights, whose float rounding would blur a tiny gradient.
    plain_gradient = steps == 1 and (observation.optimizer == "sgd" or config.assume_fedsgd)
    step_weights = client_step(observation)
    bn_targets, bn_layers = {}, {}
    targets = batch_norm_targets(observation, config)
    if targets is not None:
        bn_targets = {
            name: replace(t, mean=t.mean.to(device), var=t.var.to(device))
            for name, t in targets.layers.items()
        }
        bn_layers = {n: m for n, m in batch_norm_layers(model).items() if n in bn_targets}

    def training_loss(
        p: dict[str, torch.Tensor], images: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> tuple[torch.Tensor, BatchStatistics]:
        with plugged_masks(model, masks), recorded_statistics(bn_layers) as statistics:
            logits = functional_call(model, (p, buffers), (images,))
        return nn.functional.cross_entropy(logits, soft_labels), statistics

    def client_update(
        dummy: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> tuple[dict[str, torch.Tensor], list[BatchStatistics]]:
        """(global − weights after the client's local steps)/lr on the dummy batch, and each
        step's BatchNorm input statistics (empty dicts without the prior)."""
        current, state, statistics = params, None, []
        for step in range(steps):
            chunk = slice(step * step_size, (step + 1) * step_size)
            step_masks = {name: mask[chunk] for name, mask in masks.items()}
            step_grad, step_statistics = grad(training_loss, has_aux=True)(
                current, dummy[chunk], soft_labels[chunk], step_masks
            )
            statistics.append(step_statistics)
            if plain_gradient:
                if decay:
                    step_grad = {n: step_grad[n] + decay * current[n] for n in names}
                return step_grad, statistics
            current, state = step_weights(current, step_grad, state, step + 1)
        return {n: (params[n] - current[n]) / lr for n in names}, statistics

    def objective(
        dummy: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> tuple[torch.Tensor, torch.Tensor]:
        update, statistics = client_update(dummy, soft_labels, masks)
        dummy_update = [update[n] for n in names]
        gap = distance(replay(dummy_update) if replay else dummy_update, target)
        loss = gap + config.tv_weight * total_variation(dummy)
        if bn_targets:
            loss = loss + config.bn_weight * batch_statistics_distance(statistics, bn_targets)
        if config.image_norm_weight:
            loss = loss + config.image_norm_weight * dummy.norm()
        if masks:
            loss = loss + config.mask_rate_weight * mask_rate_penalty(masks, rate)
        return loss, gap

    return objective
