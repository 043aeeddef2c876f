"""The validated recipe of a gradient-inversion attack: which parts, which numbers."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class AttackConfig(BaseModel):
    """Parts and hyperparameters one optimisation loop composes into an attack."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = "custom"
    objective: Literal["l2", "cosine"] = "cosine"
    tv_weight: float = Field(0.0, ge=0, description="total-variation prior weight")
    optimizer: Literal["adam", "lbfgs"] = "adam"
    lr: float = Field(0.1, gt=0)
    schedule: Literal["constant", "step", "cosine", "plateau"] = Field(
        "step", description="'plateau' divides the lr by 10 when the loss stalls"
    )
    plateau_patience: float = Field(
        0.04, gt=0, le=1, description="fraction of the budget without improvement before a cut"
    )
    early_stop: float | None = Field(
        None, gt=0, le=1, description="stop after this fraction of the budget without improvement"
    )
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
    search: Literal["pixels", "generator"] = Field(
        "pixels", description="search the pixels, or a generator's stage inputs (GIFD)"
    )
    generator_stages: int | None = Field(
        None, ge=1, description="generator stages searched in turn (None: all; 1: latent only)"
    )
    feature_radius: float = Field(
        0.5,
        gt=0,
        description="l1 radius of a stage's feature change, relative to the l1 norm "
        "of the stage's starting feature map",
    )
    pixel_stage: bool = Field(
        False,
        description="after the last generator stage, search the image itself, boxed, from "
        "that stage's output (a generator search of all its stages only)",
    )
    last_stage_share: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="the last searched stage's fraction of the budget, the earlier stages "
        "splitting the rest equally (None: every stage an equal share)",
    )
    image_norm_weight: float = Field(0.0, ge=0, description="weight of the images' l2 norm")
    bn_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the BatchNorm-statistics prior: squared distance of the dummy "
        "batch's channel mean and variance to the targets in units of the target variance, "
        "averaged over channels, summed over layers (0: off)",
    )
    bn_statistics: Literal["leaked", "running"] = Field(
        "leaked",
        description="the prior's targets: the batch statistics the client's returned buffers "
        "leak (falling back to running where none do), or the global model's running ones",
    )
    dropout_masks: Literal["off", "search", "oracle"] = Field(
        "off",
        description="the victim's dropout masks: unknown and left out of the attacker's model "
        "(off), searched jointly with the images (search, DIA), or given from the client's "
        "ground truth (oracle, WIIG)",
    )
    mask_rate_weight: float = Field(
        1e-4, ge=0, description="weight of |(1 − mean mask) − p| per dropout layer"
    )
    defense_aware: bool = Field(
        False,
        description="replay the recorded defenses' known parts (clip bound, pruned zeros, "
        "quantiser levels) on the dummy update before matching (attacks.defense_replay); with "
        "recorded noise, a staged generator search stops descending at the noise floor "
        "(attacks.noise_floor)",
    )
    label_strategy: Literal["auto", "given", "idlg", "estimate", "optimize"] = Field(
        "auto", description="how labels are obtained; 'optimize' searches them jointly (DLG)"
    )

    @model_validator(mode="after")
    def _stage_options_need_a_generator(self) -> AttackConfig:
        staged = {"pixel_stage": self.pixel_stage, "last_stage_share": self.last_stage_share}
        for field, value in staged.items():
            if value not in (False, None) and self.search != "generator":
                raise ValueError(
                    f"{field} applies to a generator's stages; search is {self.search!r} "
                    "(set search='generator')"
                )
        return self
