"""Label strategies: how the attacker gets the batch's labels from an Observation.

``given`` reads labels the threat model grants; ``idlg`` recovers a single label exactly from
the last layer's gradient (Zhao et al. 2020); ``estimate`` counts labels of a batch from the
same gradient (in the spirit of Wainakh et al. 2022's LLG and Yin et al. 2021).
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from fedsim.errors import UserInputError
from fedsim.observation import Observation

LabelStrategy = Callable[[Observation], torch.Tensor]


def last_layer_gradient(observation: Observation) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The classifier's weight gradient (classes × features) and its bias gradient, if any."""
    gradient = observation.gradient()
    classes = observation.model.num_classes
    heads = [n for n, g in gradient.items() if g.ndim == 2 and g.shape[0] == classes]
    if not heads:
        raise UserInputError(f"no classifier layer with {classes} outputs in the update")
    weight_name = heads[-1]
    bias_name = weight_name.removesuffix("weight") + "bias"
    return _without_decay(observation, gradient, weight_name), (
        _without_decay(observation, gradient, bias_name) if bias_name in gradient else None
    )


def _without_decay(
    observation: Observation, gradient: dict[str, torch.Tensor], name: str
) -> torch.Tensor:
    """The update of one tensor less its weight-decay part, which would mask the label signs.

    With momentum μ over S steps, step k's direction enters the update Σ_{j<S-k} μ^j times;
    the weights barely move within a round, so decay contributes ≈ wd · w₀ · Σ_k Σ_{j<S-k} μ^j.
    Adam normalises the decayed gradient, so its decay cannot be subtracted: kept as it is.
    """
    if observation.optimizer == "adam":
        return gradient[name]
    steps, momentum = observation.local_steps, observation.momentum
    weight = sum(momentum**j for k in range(steps) for j in range(steps - k))
    return gradient[name] - observation.weight_decay * weight * observation.global_state[name]


def given_labels(observation: Observation) -> torch.Tensor:
    """Labels granted by the threat model; refuses when the observation holds none."""
    if observation.labels is None:
        raise UserInputError(
            "label strategy 'given' needs labels in the observation; valid without: idlg, estimate"
        )
    return observation.labels.clone()


def idlg_label(observation: Observation) -> torch.Tensor:
    """The one label of a batch of 1: the class whose gradient sign differs from all others."""
    if observation.examples_seen != 1:
        raise UserInputError(
            f"label strategy 'idlg' needs one image, the update saw {observation.examples_seen}; "
            "use estimate"
        )
    weight, bias = last_layer_gradient(observation)
    if bias is not None:
        # d loss / d bias = softmax − one-hot: negative only at the true class.
        return bias.argmin().view(1)
    # The weight gradient is rank 1, (p − y) hᵀ: project each row on the strongest one to read
    # the sign of p − y, which is negative only at the label, whatever the sign of h.
    reference = weight[weight.norm(dim=1).argmax()]
    signs = torch.sign(weight @ reference)
    minority = -1.0 if (signs < 0).sum() <= (signs > 0).sum() else 1.0
    return (signs == minority).float().argmax().view(1)


def estimate_labels(observation: Observation) -> torch.Tensor:
    """Count the labels of a batch from the per-class sums of the last layer's gradient."""
    weight, bias = last_layer_gradient(observation)
    signal = (bias if bias is not None else weight.sum(dim=1)).double().clone()
    size = observation.examples_seen
    negative = signal < 0
    impact = signal[negative].sum() / size if negative.any() else -signal.abs().mean()
    chosen = signal.argsort()[: min(int(negative.sum()), size)].tolist()
    signal[chosen] -= impact
    while len(chosen) < size:
        pick = int(signal.argmin())
        chosen.append(pick)
        signal[pick] -= impact
    return torch.tensor(sorted(chosen), dtype=torch.long)


def auto_labels(observation: Observation) -> torch.Tensor:
    """Given labels if granted, else iDLG for a single image, else the batch estimate."""
    if observation.labels is not None:
        return given_labels(observation)
    return (
        idlg_label(observation) if observation.examples_seen == 1 else estimate_labels(observation)
    )


LABEL_STRATEGIES: dict[str, LabelStrategy] = {
    "auto": auto_labels,
    "given": given_labels,
    "idlg": idlg_label,
    "estimate": estimate_labels,
}
