"""Defenses on the FedSGD path of ``fedleak attack``: the one gradient a client sends."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import torch
from torch import nn

from defenses.dp_sgd import EPSILON_METRIC, dp_gradient
from defenses.model_changes import defended_dropout, needs_group_norm
from defenses.soteria import soteria_gradient
from defenses.specs import DefenseSpec, DpSgd, Soteria
from defenses.update_transforms import update_transform
from fedsim.models import ModelSpec
from fedsim.models.dropout import plugged_masks
from fedsim.observation import Observation


def defended_model_spec(spec: ModelSpec, specs: Sequence[DefenseSpec]) -> ModelSpec:
    """The model the client trains under these defenses (dropout rate, GroupNorm for DP)."""
    return replace(
        spec,
        dropout=defended_dropout(specs, spec.dropout),
        dp_compatible=spec.dp_compatible or needs_group_norm(specs, spec.name),
    )


def defend_gradient(
    observation: Observation,
    model: nn.Module,
    inputs: torch.Tensor,
    labels: torch.Tensor,
    dropout_masks: Mapping[str, torch.Tensor],
    specs: Sequence[DefenseSpec],
    seed: int,
) -> Observation:
    """The observation of a gradient sent under ``specs``, in the order given.

    ``inputs`` are the normalised batch the gradient was computed on. ``dp-sgd`` acts during
    training, so it comes first: the gradient is recomputed as Opacus' clipped, noised one
    (with the same dropout masks) and its ε is kept in the observation's context. Soteria
    reads the same batch's representation, so it follows; the update transforms come last,
    in the order given.
    """
    generator = torch.Generator().manual_seed(seed)
    gradient, context = observation.client_update, dict(observation.context)
    for spec in specs:
        if isinstance(spec.params, DpSgd):
            model.train()  # Opacus records activations in train mode only; no BatchNorm is left
            with plugged_masks(model, dropout_masks):
                gradient, epsilon = dp_gradient(model, inputs, labels, spec.params, generator)
            context[EPSILON_METRIC] = epsilon
    for spec in specs:
        if isinstance(spec.params, Soteria):
            with plugged_masks(model, dropout_masks):
                gradient = soteria_gradient(model, inputs, gradient, spec.params.fraction)
    transform = update_transform(specs)
    if transform is not None:
        gradient = transform(gradient, generator)
    return replace(
        observation,
        client_update=gradient,
        defenses=tuple(str(spec) for spec in specs),
        context=context,
    )
