"""The DTN, detectors and DTA pattern shipped with fedleak (``attacks/camouflage/checkpoints/``),
so that ``fedleak dta attack`` and ``evaluate`` run without training first; each file's metadata
holds the command and seed that made it."""

from __future__ import annotations

from pathlib import Path

SHIPPED_DIR = Path(__file__).parent / "checkpoints"
SHIPPED_DTN = SHIPPED_DIR / "dtn.safetensors"
# Shipped patterns by texture name, each with its run: ``dta-cifar`` is the default attack's,
# against fcos-cifar; ``dta`` was made against the shipped ssdlite.
SHIPPED_PATTERNS = {
    "dta": SHIPPED_DIR / "dta-pattern.safetensors",
    "dta-cifar": SHIPPED_DIR / "dta-pattern-cifar.safetensors",
}
# The textures ``evaluate`` and bench cells name (besides a pattern file's path).
NAMED_TEXTURES = ("normal", "random", *SHIPPED_PATTERNS)
# A detector attacked, and one of another architecture its pattern transfers to: a pair learnt
# from scratch on renders, and a pair on the frozen, photo-pretrained CIFAR-10 trunk (the default
# attack's target and transfer).
SCRATCH_DETECTOR, SCRATCH_TRANSFER_DETECTOR = "ssdlite", "fcos"
CIFAR_DETECTOR, CIFAR_TRANSFER_DETECTOR = "fcos-cifar", "retinanet-cifar"
SHIPPED_DETECTORS = {
    name: SHIPPED_DIR / f"{name}.safetensors"
    for name in (
        SCRATCH_DETECTOR,
        SCRATCH_TRANSFER_DETECTOR,
        CIFAR_DETECTOR,
        CIFAR_TRANSFER_DETECTOR,
    )
}


def detector_path(spec: str) -> Path:
    """The checkpoint ``spec`` names: a shipped detector's name (a key of SHIPPED_DETECTORS) or
    a file path."""
    return SHIPPED_DETECTORS.get(spec, Path(spec))
