"""Detection scenes from the renderer: the car in many paints and patterns among background
distractors, each image with the car's box (the bounding box of its AOV mask)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from attacks.camouflage.dataset import MANIFEST, VIEWS_FOLDER, open_dataset, to_uint8, view_path
from attacks.camouflage.pattern_renders import random_pattern
from attacks.camouflage.renderer import CARS, View, render_image, render_mask, sample_scene_views
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.storage import load_tensors, save_tensors

# A pixel belongs to the car's box when the car covers more than half of it.
BOX_COVERAGE = 0.5
# Pattern block counts a training paint is drawn from: 1 is a flat colour, 16 per-texel noise;
# "flat" scenes keep to flat colours, a detector that has never seen a patterned car; "solid"
# ones to CAR_PAINTS, what cars on a road are painted (PAINT_CELLS holds no blocks for it).
PAINT_CELLS = {"patterns": (1, 2, 4, 8, 16), "flat": (1,), "solid": ()}
# Solid car paints (sRGB), roughly the colours of cars sold: white, black, silvers and greys
# first, then blues, reds and a few rarer ones; each scene shifts its colour by up to ±PAINT_SPREAD.
CAR_PAINTS = (
    (0.92, 0.92, 0.91),
    (0.86, 0.87, 0.88),
    (0.05, 0.05, 0.06),
    (0.12, 0.12, 0.13),
    (0.70, 0.70, 0.72),
    (0.55, 0.56, 0.58),
    (0.38, 0.39, 0.41),
    (0.08, 0.12, 0.30),
    (0.16, 0.32, 0.62),
    (0.60, 0.06, 0.06),
    (0.36, 0.04, 0.06),
    (0.10, 0.28, 0.16),
    (0.74, 0.67, 0.54),
    (0.30, 0.20, 0.12),
    (0.86, 0.70, 0.10),
    (0.86, 0.40, 0.08),
)
PAINT_SPREAD = 0.04
STORAGE = (
    "one safetensors file per scene: image (3, H, W) uint8 sRGB, boxes (B, 4) float32 xyxy "
    "pixels (B = 0 where no pixel is mostly car); the view and its paint in its metadata"
)


@dataclass(frozen=True)
class DetectionConfig:
    """``views`` scenes of ``car`` drawn from ``seed`` with up to ``distractors`` background
    objects each, the car in its reference paint or a random paint of kind ``paints`` (see
    PAINT_CELLS), ``size``² pixels, ``spp``."""

    views: int
    size: int = 64
    spp: int = 8
    seed: int = 0
    car: str = "sedan"
    distractors: int = 3
    paints: str = "patterns"

    def __post_init__(self) -> None:
        for name in ("views", "spp"):
            if getattr(self, name) <= 0:
                raise UserInputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.size < 8:
            raise UserInputError(f"size must be at least 8 pixels, got {self.size}")
        if self.distractors < 0:
            raise UserInputError(f"distractors must be ≥ 0, got {self.distractors}")
        if self.car not in CARS:
            raise UnknownNameError("car", self.car, CARS)
        if self.paints not in PAINT_CELLS:
            raise UnknownNameError("paints", self.paints, PAINT_CELLS)


@dataclass(frozen=True)
class DetectionSet:
    """Loaded scenes: ``images`` (N, 3, H, W) sRGB in [0, 1], ``boxes`` one (B, 4) xyxy pixel
    tensor per image, the views and their config."""

    images: torch.Tensor
    boxes: list[torch.Tensor]
    views: list[View]
    config: DetectionConfig


def mask_box(mask: np.ndarray | torch.Tensor) -> torch.Tensor:
    """The (B, 4) xyxy pixel box around the pixels a car ``mask`` (H, W) covers by more than
    half: one box, or none (0, 4) when no pixel is."""
    rows, cols = np.nonzero(np.asarray(mask) > BOX_COVERAGE)
    if len(rows) == 0:
        return torch.zeros((0, 4))
    return torch.tensor(
        [[cols.min(), rows.min(), cols.max() + 1, rows.max() + 1]], dtype=torch.float32
    )


def scene_paint(config: DetectionConfig, index: int) -> np.ndarray | None:
    """Scene ``index``'s paint, seeded per scene: the reference paint (None) or a (16, 16, 3)
    random pattern of one of the config's block counts a side, all equally likely; for "solid"
    scenes one of CAR_PAINTS (3,), shifted a little, or the reference paint, all equally likely."""
    cells = PAINT_CELLS[config.paints]
    rng = np.random.default_rng([config.seed, index, 2])
    if not cells:
        choice = int(rng.integers(len(CAR_PAINTS) + 1))
        if choice == len(CAR_PAINTS):
            return None
        shift = rng.uniform(-PAINT_SPREAD, PAINT_SPREAD, 3)
        return np.clip(np.asarray(CAR_PAINTS[choice]) + shift, 0.0, 1.0).astype(np.float32)
    choice = int(rng.integers(len(cells) + 1))
    return None if choice == len(cells) else random_pattern(rng, cells[choice])


def scene_views(config: DetectionConfig) -> list[View]:
    """The views of ``config``'s scenes, distractors included."""
    return sample_scene_views(config.views, config.seed, config.car, config.distractors)


def render_scenes(
    out: Path,
    config: DetectionConfig,
    command: str = "",
    on_view: Callable[[int], None] | None = None,
) -> int:
    """Render the scenes of ``config`` not yet in ``out`` (resumable), calling ``on_view(index)``
    after each; return how many were already there."""
    pending = open_dataset(out, config, command, STORAGE)
    views = scene_views(config)
    for index in pending:
        save_tensors(
            view_path(out, index),
            _scene_record(config, index, views[index]),
            {"view": asdict(views[index])},
        )
        if on_view:
            on_view(index)
    return config.views - len(pending)


def load_scenes(out: Path) -> DetectionSet:
    """Every scene of the detection dataset in ``out`` rendered so far, in index order."""
    paths = sorted((out / VIEWS_FOLDER).glob("*.safetensors"))
    if not (out / MANIFEST).exists() or not paths:
        raise UserInputError(
            f"{out} holds no detection scenes; make them with fedleak dta render-detection-dataset"
        )
    settings = json.loads((out / MANIFEST).read_text())["config"]
    if "distractors" not in settings:
        raise UserInputError(f"{out} is a DTN triplet dataset, not a detection dataset")
    records, views = [], []
    for path in paths:
        tensors, meta = load_tensors(path)
        records.append(tensors)
        views.append(View(**meta["view"]))
    return _as_set(records, views, DetectionConfig(**settings))


def render_scene_set(config: DetectionConfig) -> DetectionSet:
    """Every scene of ``config`` rendered in this process and kept in memory (nothing written)."""
    views = scene_views(config)
    records = [_scene_record(config, index, view) for index, view in enumerate(views)]
    return _as_set(records, views, config)


def _as_set(
    records: list[dict[str, torch.Tensor]], views: list[View], config: DetectionConfig
) -> DetectionSet:
    return DetectionSet(
        images=torch.stack([r["image"] for r in records]).float() / 255,
        boxes=[r["boxes"] for r in records],
        views=views,
        config=config,
    )


def _scene_record(config: DetectionConfig, index: int, view: View) -> dict[str, torch.Tensor]:
    """Scene ``index`` rendered in its paint, with the car's box, as stored."""
    image = render_image(view, scene_paint(config, index), config.size, config.spp)
    # The box needs only which pixels are mostly car: the centre ray of each tells, at 1/16 of the
    # cost of the 4×4 rays a paste mask takes.
    mask = render_mask(view, config.size, supersample=1)
    return {"image": to_uint8(image), "boxes": mask_box(mask)}
