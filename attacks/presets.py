"""Named attacks as presets of the one engine: the registry the CLI, benchmarks and viewer read."""

from __future__ import annotations

from attacks.config import AttackConfig
from fedsim.errors import UnknownNameError

BN_WEIGHT = 0.1
"""Weight of ig-bn's BatchNorm-statistics prior (in each channel's own units) beside IG's cosine
distance: on one train-mode batch of a trained convnet64 (200 steps) 0.01 / 0.1 / 1 reached
12.5 / 13.9 / 13.8 dB; benchmarks/README.md (suites batchnorm, batchnorm-trained) has the rest."""

# Zhu et al. 2019: squared-L2 gradient match, L-BFGS, labels searched jointly.
_DLG = AttackConfig(
    name="dlg",
    objective="l2",
    optimizer="lbfgs",
    lr=1.0,
    schedule="constant",
    signed=False,
    boxed=False,
    iterations=300,
    label_strategy="optimize",
)
# Geiping et al. 2020 defaults: cosine distance, TV 1e-4, signed Adam lr 0.1 with step decay at
# 3/8, 5/8, 7/8, box constraint, 24,000 iterations.
_IG = AttackConfig(
    name="ig",
    objective="cosine",
    tv_weight=1e-4,
    optimizer="adam",
    lr=0.1,
    schedule="step",
    iterations=24_000,
)
# Scheliga et al. 2023 (AAAI), the authors' DIA config: IG's cosine distance with TV 1e-5, signed
# Adam lr 0.1, box constraint, lr /10 after 800 stalled steps and a stop after 4,000, of 20,000;
# one continuous mask per dropout layer searched with the images, rate regulariser 1e-4.
_DIA = _IG.model_copy(
    update={
        "name": "dia",
        "tv_weight": 1e-5,
        "schedule": "plateau",
        "plateau_patience": 0.04,
        "early_stop": 0.2,
        "iterations": 20_000,
        "dropout_masks": "search",
        "mask_rate_weight": 1e-4,
    }
)
# Fang et al. 2023 (GIFD): cosine distance, TV 1e-4, image norm 1e-6, Adam lr 0.1 decaying
# (cosine) within each stage, unsigned gradients, restarts; the latent and then each stage's
# input searched in turn, the output being the stage with the lowest gradient distance. GIFD's
# code takes each stage's steps as a list; here the last stage gets 80 % of the budget, where
# it beat equal shares by 5 dB at 180 s (suite gifd-regime, benchmarks/README.md).
_GIFD = _IG.model_copy(
    update={
        "name": "gifd",
        "image_norm_weight": 1e-6,
        "schedule": "cosine",
        "signed": False,
        "boxed": False,
        "iterations": 2_000,
        "restarts": 4,
        "search": "generator",
        "last_stage_share": 0.8,
    }
)

# Inverting Gradients for short budgets (hundreds of steps, not 24,000): a 3× larger first
# step with cosine decay. On convnet64 / CIFAR-10 at 50 steps it gained 4–5 dB over the
# paper's schedule (benchmarks/README.md).
_IG_FAST = _IG.model_copy(
    update={"name": "ig-fast", "lr": 0.3, "schedule": "cosine", "iterations": 200}
)
# ig-fast plus the BatchNorm-statistics prior (Yin et al. 2021, GradInversion) for clients that
# train in train mode: targets leaked by the client's returned buffers (attacks.batch_statistics).
_IG_BN = _IG_FAST.model_copy(update={"name": "ig-bn", "bn_weight": BN_WEIGHT})

PRESETS: dict[str, AttackConfig] = {
    "dlg": _DLG,
    # Zhao et al. 2020: DLG with the label read analytically from the last layer (batch 1).
    "idlg": _DLG.model_copy(update={"name": "idlg", "label_strategy": "idlg"}),
    "ig": _IG,
    "ig-fast": _IG_FAST,
    "ig-bn": _IG_BN,
    # GradInversion's own assumption: the global model's running statistics as the targets.
    "ig-bn-running": _IG_BN.model_copy(
        update={"name": "ig-bn-running", "bn_statistics": "running"}
    ),
    "dia": _DIA,
    # The same paper's IG baseline: DIA's recipe with dropout left out of the attacker's model.
    "dia-no-masks": _DIA.model_copy(update={"name": "dia-no-masks", "dropout_masks": "off"}),
    # The "well-informed" oracle of the same paper: DIA's recipe given the client's true masks.
    "wiig": _DIA.model_copy(update={"name": "wiig", "dropout_masks": "oracle"}),
    "gifd": _GIFD,
    # The GAN-prior phase of GIAS / GGL-style attacks: GIFD's recipe on the latent alone.
    "gan-latent": _GIFD.model_copy(
        update={"name": "gan-latent", "generator_stages": 1, "last_stage_share": None}
    ),
    # GIFD, then the image itself from its last stage's output, searched with GIFD's optimiser:
    # a pixel search like IG's, begun where the generator's stages left it (a fedleak variant,
    # not in the paper); its five stages share the budget equally.
    "gifd-pixels": _GIFD.model_copy(
        update={"name": "gifd-pixels", "pixel_stage": True, "last_stage_share": None}
    ),
}

ATTACK_DESCRIPTIONS: dict[str, str] = {
    "dlg": "Deep Leakage from Gradients (Zhu et al. 2019)",
    "idlg": "Improved DLG: analytic label, batch 1 (Zhao et al. 2020)",
    "ig": "Inverting Gradients (Geiping et al. 2020)",
    "ig-fast": "Inverting Gradients tuned for short budgets (lr 0.3, cosine decay)",
    "ig-bn": "ig-fast + BatchNorm-statistics prior, targets leaked by the client's buffers",
    "ig-bn-running": "ig-fast + BatchNorm-statistics prior on the global running statistics",
    "dia": "Dropout Inversion Attack: masks searched with the images (Scheliga et al. 2023)",
    "dia-no-masks": "IG with DIA's recipe, dropout left out (the DIA paper's IG baseline)",
    "wiig": "ORACLE upper bound: DIA given the client's true dropout masks (reads ground truth)",
    "gifd": "GIFD: a generator's latent, then each stage's features (l1-ball), Fang et al. 2023",
    "gan-latent": "Search a generator's latent only (the GAN-prior phase of GIAS / GGL)",
    "gifd-pixels": "GIFD, then the pixels from its output (a fedleak variant)",
}


def attack_names() -> list[str]:
    """Names of every registered attack preset."""
    return list(PRESETS)


def get_preset(preset: str, /, **overrides: object) -> AttackConfig:
    """The named preset, with any fields (``name`` included) overridden and validated."""
    if preset not in PRESETS:
        raise UnknownNameError("attack", preset, PRESETS)
    return AttackConfig.model_validate({**PRESETS[preset].model_dump(), **overrides})
