"""A FedSGD client step outside Flower: one batch's gradient, packed as an Observation."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.data import DatasetSpec, normalize
from fedsim.ground_truth import GroundTruth
from fedsim.models import ModelSpec
from fedsim.models.dropout import client_mode, recording_masks
from fedsim.observation import Observation


def client_gradient(
    model: nn.Module, inputs: torch.Tensor, labels: torch.Tensor, *, train_mode: bool
) -> dict[str, torch.Tensor]:
    """Gradient of the mean cross-entropy of one normalised batch w.r.t. each parameter.

    BatchNorm follows ``train_mode``; dropout layers draw masks whenever their rate is > 0.
    """
    client_mode(model, train_mode)
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    loss = nn.functional.cross_entropy(model(inputs), labels)
    grads = torch.autograd.grad(loss, [p for _, p in named])
    return {name: g.detach() for (name, _), g in zip(named, grads, strict=True)}


def fedsgd_observation(
    model: nn.Module,
    model_spec: ModelSpec,
    dataset: DatasetSpec,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    train_mode: bool = False,
    grant_labels: bool = False,
    lr: float = 0.1,
    indices: tuple[int, ...] = (),
) -> tuple[Observation, GroundTruth]:
    """Simulate a FedSGD client on [0, 1] pixels; return what the server sees and the secret."""
    global_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    with recording_masks(model) as masks:
        gradient = client_gradient(model, normalize(images, dataset), labels, train_mode=train_mode)
    observation = Observation(
        model=model_spec,
        dataset=dataset.name,
        mean=tuple(dataset.mean),
        std=tuple(dataset.std),
        global_state=global_state,
        client_update=gradient,
        update_kind="gradient",
        lr=lr,
        local_steps=1,
        batch_size=len(labels),
        num_examples=len(labels),
        train_mode=train_mode,
        labels=labels.clone() if grant_labels else None,
    )
    truth = GroundTruth(images.detach().cpu(), labels.detach().cpu(), indices, masks)
    return observation, truth
