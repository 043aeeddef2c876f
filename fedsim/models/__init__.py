"""Victim models for gradient inversion, looked up by name through one registry."""

from fedsim.models.registry import (
    ModelSpec,
    build_model,
    count_parameters,
    has_dropout,
    model_names,
    needs_dp_fix,
)

__all__ = [
    "ModelSpec",
    "build_model",
    "count_parameters",
    "has_dropout",
    "model_names",
    "needs_dp_fix",
]
