"""The gradient-matching objective: how well a dummy batch explains an observed update."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call, grad, replace_all_batch_norm_modules_

from attacks.client_optimizers import client_step
from attacks.config import AttackConfig
from attacks.defense_replay import defense_replay
from attacks.dropout_masks import Masks, mask_rate_penalty
from attacks.objectives import OBJECTIVES
from attacks.priors import total_variation
from fedsim.models import build_model
from fedsim.models.dropout import dropout_layers, plugged_masks
from fedsim.observation import Observation

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)
Objective = Callable[[torch.Tensor, torch.Tensor, Masks], tuple[torch.Tensor, torch.Tensor]]
"""(dummy images, soft labels, dropout masks) of one restart → (loss with priors, distance)."""


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
            if isinstance(module, _BATCH_NORMS) and module.training:
                replace_all_batch_norm_modules_(module)
    return model.requires_grad_(False)


def gradient_matching_objective(
    observation: Observation, config: AttackConfig, device: torch.device
) -> Objective:
    """Build the per-restart objective: update distance to the observation plus priors.

    Images are in the model's normalised input space, ``examples_seen`` of them in step order;
    soft labels are (images, classes) probabilities (one-hot when the labels are fixed); masks,
    per dropout layer, hold one mask per image in the same order (empty: dropout off). The
    client's optimiser (SGD or Adam, :mod:`attacks.client_optimizers`) is replayed on the dummy
    batch from the known lr, steps and batch size, unless ``config.assume_fedsgd`` asks for the
    naive view of the update as one gradient of all its images.
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

    def training_loss(
        p: dict[str, torch.Tensor], images: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> torch.Tensor:
        with plugged_masks(model, masks):
            logits = functional_call(model, (p, buffers), (images,))
        return nn.functional.cross_entropy(logits, soft_labels)

    def client_update(
        dummy: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> dict[str, torch.Tensor]:
        """(global − weights after the client's local steps)/lr on the dummy batch."""
        current, state = params, None
        for step in range(steps):
            chunk = slice(step * step_size, (step + 1) * step_size)
            step_masks = {name: mask[chunk] for name, mask in masks.items()}
            step_grad = grad(training_loss)(current, dummy[chunk], soft_labels[chunk], step_masks)
            if plain_gradient:
                return {n: step_grad[n] + decay * current[n] for n in names} if decay else step_grad
            current, state = step_weights(current, step_grad, state, step + 1)
        return {n: (params[n] - current[n]) / lr for n in names}

    def objective(
        dummy: torch.Tensor, soft_labels: torch.Tensor, masks: Masks
    ) -> tuple[torch.Tensor, torch.Tensor]:
        update = client_update(dummy, soft_labels, masks)
        dummy_update = [update[n] for n in names]
        gap = distance(replay(dummy_update) if replay else dummy_update, target)
        loss = gap + config.tv_weight * total_variation(dummy)
        if config.image_norm_weight:
            loss = loss + config.image_norm_weight * dummy.norm()
        if masks:
            loss = loss + config.mask_rate_weight * mask_rate_penalty(masks, rate)
        return loss, gap

    return objective
