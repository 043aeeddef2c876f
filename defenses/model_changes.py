"""How defenses change the model itself: a dropout rate, GroupNorm for DP training."""

from __future__ import annotations

from collections.abc import Sequence

from defenses.specs import DefenseSpec, Dropout
from fedsim.errors import UserInputError
from fedsim.models import needs_dp_fix

DP_FIX_DEFENSES = (
    "dp-sgd",
    "flower-dp-client",
    "flower-dp-server",
    "flower-dp-adaptive",
    "local-dp",
)
"""Defenses that need a model Opacus accepts: per-example gradients (DP-SGD), or no integer
buffers for Flower's DP clipping and noise, which act on every array of the model."""


def defended_dropout(specs: Sequence[DefenseSpec], dropout: float) -> float:
    """The dropout rate to train with: ``dropout:p=`` when given (not also a plain rate)."""
    chosen = [spec.params for spec in specs if isinstance(spec.params, Dropout)]
    if not chosen:
        return dropout
    if dropout:
        raise UserInputError(
            f"dropout rate given twice (--dropout {dropout} and defense dropout:p="
            f"{chosen[0].p}); give one"
        )
    return chosen[0].p


def needs_group_norm(specs: Sequence[DefenseSpec], model: str) -> bool:
    """Whether the model's BatchNorm must become GroupNorm for these defenses."""
    return needs_dp_fix(model) and any(spec.name in DP_FIX_DEFENSES for spec in specs)
