"""(x_ref, mask, flat colour, render) triplets from the renderer, one safetensors file per view,
written atomically so that a rerun resumes where a crash stopped and loses nothing."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from functools import partial
from importlib import metadata
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from attacks.camouflage.renderer import CARS, View, render_image, render_mask, sample_views
from attacks.camouflage.renderer.pool import map_renders
from fedsim.errors import UnknownNameError, UserInputError
from fedsim.provenance import provenance
from fedsim.storage import load_tensors, save_tensors, write_json

MANIFEST = "dataset.json"
VIEWS_FOLDER = "views"


class ViewsConfig(Protocol):
    """A frozen dataclass of dataset settings that draws ``views`` views from ``seed``."""

    views: int
    seed: int


@dataclass(frozen=True)
class DatasetConfig:
    """What a triplet dataset holds: ``views`` views of ``car`` drawn from ``seed``, each rendered
    in its reference paint and ``colours`` random flat sRGB colours, ``size``² pixels, ``spp``."""

    views: int
    colours: int
    size: int = 128
    spp: int = 16
    seed: int = 0
    car: str = "sedan"

    def __post_init__(self) -> None:
        for name in ("views", "colours", "spp"):
            if getattr(self, name) <= 0:
                raise UserInputError(f"{name} must be positive, got {getattr(self, name)}")
        if self.size < 8:
            raise UserInputError(f"size must be at least 8 pixels, got {self.size}")
        if self.car not in CARS:
            raise UnknownNameError("car", self.car, CARS)


@dataclass(frozen=True)
class Triplets:
    """A loaded dataset: ``x_ref`` (V, 3, H, W) and ``renders`` (V, K, 3, H, W) sRGB in [0, 1],
    ``masks`` (V, H, W) car coverage, ``colours`` (V, K, 3) sRGB, the views and their config."""

    x_ref: torch.Tensor
    masks: torch.Tensor
    colours: torch.Tensor
    renders: torch.Tensor
    views: list[View]
    config: DatasetConfig


def view_colours(config: DatasetConfig, index: int) -> np.ndarray:
    """The (K, 3) flat sRGB colours of view ``index``, uniform in [0, 1], seeded per view."""
    return (
        np.random.default_rng([config.seed, index]).random((config.colours, 3)).astype(np.float32)
    )


def render_provenance(seed: int) -> dict[str, object]:
    """fedleak's provenance record of a run on the CPU, with the Mitsuba version beside it."""
    return {**provenance(seed, torch.device("cpu")), "mitsuba": metadata.version("mitsuba")}


def view_path(out: Path, index: int) -> Path:
    """The file that holds view ``index`` of the dataset in ``out``."""
    return out / VIEWS_FOLDER / f"{index:06d}.safetensors"


def open_dataset(out: Path, config: ViewsConfig, command: str = "", storage: str = "") -> list[int]:
    """Write the manifest of ``out`` (or check that the one there describes the same renders)
    and return the indices of the views not yet rendered; ``storage`` describes the files
    (default: the triplets').

    Views are drawn in sequence from the seed, so a rerun may ask for more views than before.
    """
    manifest = out / MANIFEST
    settings = asdict(config)
    runs = []
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        before, runs = recorded["config"], recorded["runs"]
        mismatched = sorted(k for k, v in settings.items() if k != "views" and before[k] != v)
        if mismatched:
            raise UserInputError(
                f"{out} holds renders made with other settings ({before}); "
                f"differing: {', '.join(mismatched)}"
            )
        settings["views"] = max(settings["views"], before["views"])
    (out / VIEWS_FOLDER).mkdir(parents=True, exist_ok=True)
    runs.append({"command": command, **render_provenance(config.seed)})
    write_json(manifest, {"config": settings, "storage": storage or _STORAGE, "runs": runs})
    return [i for i in range(config.views) if not view_path(out, i).exists()]


def render_views(
    out: Path,
    config: DatasetConfig,
    indices: list[int],
    *,
    workers: int = 1,
    on_view: Callable[[int], None] | None = None,
) -> None:
    """Render and write the views ``indices`` of ``config`` into ``out``, calling ``on_view``
    after each; ``workers`` > 1 renders in that many processes, one render thread each."""
    views = sample_views(config.views, config.seed, config.car)
    done = map_renders(
        partial(_render_and_save, out, config), [(i, views[i]) for i in indices], workers
    )
    for index in done:
        if on_view:
            on_view(index)


def load_triplets(out: Path) -> Triplets:
    """Every view of the dataset in ``out`` rendered so far, in index order."""
    paths = sorted((out / VIEWS_FOLDER).glob("*.safetensors"))
    if not (out / MANIFEST).exists() or not paths:
        raise UserInputError(
            f"{out} holds no rendered views; make them with fedleak dta render-dataset"
        )
    records, views = [], []
    for path in paths:
        tensors, meta = load_tensors(path)
        records.append(tensors)
        views.append(View(**meta["view"]))
    config = DatasetConfig(**json.loads((out / MANIFEST).read_text())["config"])
    return _as_triplets(records, views, config)


def render_triplets(config: DatasetConfig) -> Triplets:
    """Render every view of ``config`` in this process and keep it in memory (nothing written)."""
    views = sample_views(config.views, config.seed, config.car)
    records = [_render_record(config, index, view) for index, view in enumerate(views)]
    return _as_triplets(records, views, config)


def _as_triplets(
    records: list[dict[str, torch.Tensor]], views: list[View], config: DatasetConfig
) -> Triplets:
    stacked = {key: torch.stack([record[key] for record in records]) for key in records[0]}
    return Triplets(
        x_ref=stacked["x_ref"].float() / 255,
        masks=stacked["mask"],
        colours=stacked["colours"],
        renders=stacked["renders"].float() / 255,
        views=views,
        config=config,
    )


_STORAGE = (
    "one safetensors file per view: x_ref (3, H, W) uint8 sRGB, mask (H, W) float32 coverage, "
    "colours (K, 3) float32 sRGB, renders (K, 3, H, W) uint8 sRGB; the view in its metadata"
)


def _render_and_save(out: Path, config: DatasetConfig, indexed: tuple[int, View]) -> int:
    """Render the ``indexed`` (index, view) and write its file atomically; return the index."""
    index, view = indexed
    save_tensors(view_path(out, index), _render_record(config, index, view), {"view": asdict(view)})
    return index


def _render_record(config: DatasetConfig, index: int, view: View) -> dict[str, torch.Tensor]:
    """View ``index`` in its reference paint and its flat colours, with its mask, as stored."""
    colours = view_colours(config, index)
    images = [render_image(view, None, config.size, config.spp)]
    images += [render_image(view, tuple(c), config.size, config.spp) for c in colours]
    as_bytes = [to_uint8(image) for image in images]
    return {
        "x_ref": as_bytes[0],
        "mask": torch.from_numpy(render_mask(view, config.size)),
        "colours": torch.from_numpy(colours),
        "renders": torch.stack(as_bytes[1:]),
    }


def to_uint8(image: np.ndarray) -> torch.Tensor:
    """(H, W, 3) in [0, 1] → (3, H, W) uint8."""
    return torch.from_numpy(np.rint(image.transpose(2, 0, 1) * 255).astype(np.uint8))
