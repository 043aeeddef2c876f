"""The validated recipe of a gradient-inversion attack: which parts, which numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class AttackConfig(BaseModel):
    """Parts and hyperparameters one optimisation loop composes into an attack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    objective: Literal["l2", "cosine"] = "cosine"
    tv_weight: float = Field(0.0, ge=0, description="total-variation prior weight")
    optimizer: Literal["adam", "lbfgs"] = "adam"
    lr: float = Field(0.1, gt=0)
    schedule: Literal["constant", "step", "cosine"] = "step"
    signed: bool = Field(True, description="step on the sign of the image gradient")
    boxed: bool = Field(True, description="clamp images to the valid pixel range after each step")
    init: Literal["randn", "rand", "zeros"] = "randn"
    iterations: int = Field(200, ge=0)
    time_budget_s: float | None = Field(None, gt=0, description="stop after this many seconds")
    restarts: int = Field(1, ge=1, description="independent trials, run as one batch")
    assume_fedsgd: bool = Field(
        False,
        description="treat a multi-step update as one gradient of all its images (naive view) "
        "instead of replaying the client's local SGD steps",
    )
    label_strategy: Literal["auto", "given", "idlg", "estimate", "optimize"] = Field(
        "auto", description="how labels are obtained; 'optimize' searches them jointly (DLG)"
    )
