"""Soteria (Sun et al., CVPR 2021): prune the representation the last linear layer reads.

For each input feature r_f of the defended layer, the score Σ_b ‖∂r_bf/∂x_b‖ / (|r_bf| + 0.1)
measures how much the input must move per unit of the feature (the inverse of the paper's
‖r‖ / ‖∇_x r‖ ratio, as the authors' code computes it; |·| because our MLP's GELU features may
be negative). The features of smallest score leak the input most cheaply and are pruned: their
columns of the layer's weight gradient are zeroed, the rest of the gradient is kept.
"""

from __future__ import annotations

import torch
from torch import nn

from defenses.specs import Soteria
from fedsim.flower.defense_hooks import RepresentationDefense, UpdateTransform

_SCORE_OFFSET = 0.1  # keeps near-zero features from dominating, as in the authors' code
_GRADIENT_ELEMENTS = 2**26  # input-gradient entries held at once (256 MB of float32)


def defended_layer(model: nn.Module) -> str:
    """Name of the layer Soteria defends: the model's last ``nn.Linear``."""
    names = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
    if not names:
        raise ValueError(f"{type(model).__name__} has no linear layer for Soteria to defend")
    return names[-1]


def feature_scores(model: nn.Module, inputs: torch.Tensor, layer: str) -> torch.Tensor:
    """Per input feature of ``layer``: Σ over the batch of ‖∂r_f/∂x‖ / (|r_f| + 0.1)."""
    captured: list[torch.Tensor] = []
    hook = model.get_submodule(layer).register_forward_hook(
        lambda _module, args, _output: captured.append(args[0])
    )
    inputs = inputs.detach().requires_grad_(True)
    try:
        model(inputs)
    finally:
        hook.remove()
    features = captured[0].flatten(1)
    width = features.shape[1]
    # One batched backward per chunk of features: the chunk's input gradients stay in memory.
    chunk = max(1, _GRADIENT_ELEMENTS // inputs.numel())
    norms = []
    for start in range(0, width, chunk):
        basis = torch.eye(width, dtype=features.dtype)[start : start + chunk]
        outputs = basis.unsqueeze(1).expand(len(basis), *features.shape)
        (sensitivity,) = torch.autograd.grad(
            features, inputs, outputs, retain_graph=True, is_grads_batched=True
        )
        norms.append(sensitivity.flatten(2).norm(dim=2))
    per_sample = torch.cat(norms).T  # (batch, features)
    return (per_sample / (features.detach().abs() + _SCORE_OFFSET)).sum(0)


def soteria_gradient(
    model: nn.Module, inputs: torch.Tensor, gradient: dict[str, torch.Tensor], fraction: float
) -> dict[str, torch.Tensor]:
    """``gradient`` with the ⌊fraction·d⌋ lowest-scoring feature columns of the defended
    layer's weight gradient zeroed; ``inputs`` are the normalised batch it was computed on."""
    layer = defended_layer(model)
    scores = feature_scores(model, inputs, layer)
    pruned = torch.argsort(scores, stable=True)[: int(fraction * len(scores))]
    weight = f"{layer}.weight"
    defended = gradient[weight].clone()
    defended[:, pruned] = 0
    return {**gradient, weight: defended}


def soteria_transform(params: Soteria) -> RepresentationDefense:
    """A Flower client's Soteria: from the received model and the round's normalised inputs,
    the update transform that zeroes the pruned columns (a multi-step update is pruned by
    the scores at the received weights, over every image of the round)."""

    def build(model: nn.Module, inputs: torch.Tensor) -> UpdateTransform:
        return lambda update, _generator: soteria_gradient(model, inputs, update, params.fraction)

    return build
