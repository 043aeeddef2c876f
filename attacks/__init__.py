"""Gradient-inversion attacks on an Observation: presets of one composable engine.

``rec = InvertingGradients(iterations=2_000)(observation)``
"""

from attacks.config import AttackConfig
from attacks.engine import GradientInversion
from attacks.presets import ATTACK_DESCRIPTIONS, PRESETS, attack_names, get_preset
from attacks.reconstruction import Reconstruction


def DLG(**overrides: object) -> GradientInversion:  # noqa: N802 - reads as a class, like torchattacks
    """Deep Leakage from Gradients with optional config overrides."""
    return GradientInversion(get_preset("dlg", **overrides))


def iDLG(**overrides: object) -> GradientInversion:  # noqa: N802
    """Improved DLG (analytic label, batch 1) with optional config overrides."""
    return GradientInversion(get_preset("idlg", **overrides))


def InvertingGradients(**overrides: object) -> GradientInversion:  # noqa: N802
    """Inverting Gradients with Geiping et al.'s defaults and optional overrides."""
    return GradientInversion(get_preset("ig", **overrides))


__all__ = [
    "ATTACK_DESCRIPTIONS",
    "DLG",
    "PRESETS",
    "AttackConfig",
    "GradientInversion",
    "InvertingGradients",
    "Reconstruction",
    "attack_names",
    "get_preset",
    "iDLG",
]
