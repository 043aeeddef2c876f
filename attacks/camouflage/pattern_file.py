"""Camouflage patterns on disk (a safetensors tensor and a PNG of the same square texels) and the
textures ``evaluate`` accepts: the normal paint, a random pattern, a shipped DTA pattern, or a
pattern file."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from attacks.camouflage.attack import initial_pattern
from attacks.camouflage.shipped import NAMED_TEXTURES, SHIPPED_PATTERNS
from fedsim.errors import UserInputError
from fedsim.storage import load_tensors, save_tensors

# A pattern is square, (3, n, n) with n in this range (DTA's is 16).
SIDES = (2, 512)


def save_pattern(stem: Path, pattern: torch.Tensor, meta: dict) -> Path:
    """Write ``pattern`` (3, n, n) sRGB in [0, 1] as ``stem``.safetensors (with ``meta``) and
    ``stem``.png; return the safetensors path."""
    path = stem.with_suffix(".safetensors")
    save_tensors(path, {"pattern": pattern.float()}, meta)
    texels = np.rint(pattern.detach().cpu().numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
    Image.fromarray(texels).save(stem.with_suffix(".png"))
    return path


def load_pattern(path: Path) -> torch.Tensor:
    """The (3, n, n) sRGB pattern in [0, 1] of a ``.safetensors`` (key ``pattern``) or image
    file, n in :data:`SIDES`; any other shape or range is refused."""
    if path.suffix == ".safetensors":
        tensors, _ = load_tensors(path)
        if "pattern" not in tensors:
            raise UserInputError(f"{path} holds no tensor named 'pattern'")
        pattern = tensors["pattern"].float()
    else:
        try:
            image = np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255
        except OSError as error:
            raise UserInputError(f"{path} is not a pattern image: {error}") from None
        pattern = torch.from_numpy(image.transpose(2, 0, 1).copy())
    shape = tuple(pattern.shape)
    low, high = SIDES
    if len(shape) != 3 or shape[0] != 3 or shape[1] != shape[2] or not low <= shape[1] <= high:
        raise UserInputError(
            f"{path}: a pattern must be (3, n, n) (channels, rows, columns) with n in "
            f"{low}..{high}, got {shape}"
        )
    if not torch.isfinite(pattern).all() or pattern.min() < 0 or pattern.max() > 1:
        raise UserInputError(f"{path}: pattern values must be sRGB in [0, 1]")
    return pattern


def texture_file(spec: str) -> Path | None:
    """The pattern file a texture ``spec`` reads: a shipped pattern for its name (``dta``,
    ``dta-cifar``), the path itself for a path, None for ``normal`` and ``random``."""
    if spec in ("normal", "random"):
        return None
    path = SHIPPED_PATTERNS.get(spec, Path(spec))
    if not path.is_file():
        raise UserInputError(
            f"unknown texture {spec!r}; valid: {', '.join(NAMED_TEXTURES)} (the shipped "
            "patterns), or a pattern file (.safetensors or .png, 3×n×n)"
        )
    return path


def resolve_texture(spec: str, seed: int) -> torch.Tensor | None:
    """The texture ``spec`` names: None for ``normal`` (the reference paint), seeded uniform
    noise for ``random`` (the attack's start with the same seed), else the pattern of its
    :func:`texture_file`."""
    if spec == "normal":
        return None
    if spec == "random":
        return initial_pattern(seed)
    return load_pattern(texture_file(spec))
