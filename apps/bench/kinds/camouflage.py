"""The ``camouflage`` cell kind: DTA textures judged in the Mitsuba renderer, and the DTN's
fidelity to it, on held-out views::

    [[grid]]
    kind = "camouflage"
    measure = "detection"             # a texture on a detector: AP@0.5, success, renders/s
    texture = ["normal", "random", "dta"]
    detector = ["ssdlite", "fcos"]
    car = ["sedan", "van"]

    [[grid]]
    kind = "camouflage"
    measure = "dtn"                   # the DTN vs the renderer: SSIM, PSNR, predictions/s
    texture = ["flat", "patterns"]    # held-out flat colours, or textured patterns

Detectors, the DTN and the ``dta`` / ``dta-cifar`` patterns default to the shipped checkpoints
(:mod:`attacks.camouflage.shipped`); a detector or texture may also be a file path. Each cell
keeps a few of its images for the viewer in ``examples.safetensors``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from apps.bench.kinds.base import CellKind, KindCell, KindGrid
from attacks.camouflage.shipped import NAMED_TEXTURES

EXAMPLES = 4
"""Views per cell kept for the viewer."""
EXAMPLES_FILE = "examples.safetensors"
DTN_TEXTURES = ("flat", "patterns")
FLAT_COLOURS = 4
"""Held-out flat colours per view of a ``flat`` DTN cell (``patterns``: 2 patterns a view)."""
PATTERNS_PER_VIEW = 2


class CamouflageCell(KindCell):
    """One texture on one detector (``detection``), or the DTN on one kind of paint (``dtn``),
    over ``views`` held-out views of ``car`` drawn from ``seed``."""

    kind: Literal["camouflage"] = "camouflage"
    measure: Literal["detection", "dtn"]
    texture: str
    detector: str | None
    car: str
    views: int
    seed: int
    spp: int
    dtn: str | None

    def label(self) -> str:
        """measure, texture (and detector), car, views."""
        on = f" on {self.detector}" if self.detector else ""
        return f"camouflage {self.measure} {self.texture}{on} {self.car} ({self.views} views)"

    def store_fields(self) -> dict[str, object]:
        """The store's columns: the detector as model, the texture as attack."""
        return {
            "dataset": "mitsuba",
            "model": self.detector or "dtn",
            "attack": self.texture,
            "defense": None,
            "batch_size": None,
            "images": self.views,
            "seed": self.seed,
        }

    def run(self, folder: Path, cache: Path | None) -> dict[str, Any]:
        """Render, score and write ``metrics.json``, ``config.json`` and the examples."""
        from apps.report import CONFIG_FILE, METRICS_FILE
        from fedsim.storage import write_json

        started = time.perf_counter()
        folder.mkdir(parents=True, exist_ok=True)
        write_json(folder / CONFIG_FILE, json.loads(self.config_json()))
        metrics = self._detection(folder) if self.measure == "detection" else self._dtn(folder)
        metrics["wall_s"] = round(time.perf_counter() - started, 2)
        write_json(folder / METRICS_FILE, metrics)
        return metrics

    def _dtn_path(self) -> Path:
        from attacks.camouflage.shipped import SHIPPED_DTN

        return SHIPPED_DTN if self.dtn is None else Path(self.dtn)

    def _detection(self, folder: Path) -> dict[str, Any]:
        """The texture rendered on the held-out views and scored on the detector."""
        import torch
        from safetensors.torch import save_file

        from attacks.camouflage.detector import load_detector
        from attacks.camouflage.dtn import load_dtn
        from attacks.camouflage.evaluation import evaluate_texture
        from attacks.camouflage.pattern_file import resolve_texture, texture_file
        from attacks.camouflage.renderer import TILE_SIZE_M, sample_scene_views
        from attacks.camouflage.shipped import detector_path
        from fedsim.storage import load_metadata

        model, record = load_detector(detector_path(self.detector or ""))
        dtn, _ = load_dtn(self._dtn_path())
        pattern = resolve_texture(self.texture, self.seed)
        path = texture_file(self.texture)
        made = load_metadata(path) if path is not None and path.suffix == ".safetensors" else {}
        judged = evaluate_texture(
            model,
            record.car_label,
            sample_scene_views(self.views, self.seed, self.car),
            pattern,
            size=record.size,
            spp=self.spp,
            tile_m=made.get("tile_m") or TILE_SIZE_M,
            dtn=dtn,
            projection=made.get("projection", "surface"),
        )
        shown = slice(0, EXAMPLES)
        examples = {
            "rendered": _pixels(judged.rendered[shown]),
            "piped": _pixels(judged.piped[shown]),
            "true_boxes": torch.stack([_one_box(t) for t in judged.targets[shown]]),
        }
        for index, found in enumerate(judged.found[shown]):
            examples[f"boxes_{index}"] = found["boxes"].contiguous()
            examples[f"scores_{index}"] = found["scores"].contiguous()
        if pattern is not None:
            examples["pattern"] = pattern.contiguous()
        save_file(examples, str(folder / EXAMPLES_FILE))
        return {
            **judged.scores,
            "psnr": None,  # the store's column is a reconstruction's; dtn_psnr is the pipeline's
            "renders_per_s": round(self.views / judged.render_s, 3),
            "attack_wall_s": made.get("wall_s"),
            "arch": record.arch,
        }

    def _dtn(self, folder: Path) -> dict[str, Any]:
        """The DTN's predictions against real renders of held-out colours or patterns."""
        import torch
        from safetensors.torch import save_file

        from attacks import metrics as image_metrics
        from attacks.camouflage.dataset import DatasetConfig, render_triplets
        from attacks.camouflage.dtn import load_dtn, paste
        from attacks.camouflage.dtn_fidelity import fidelity, flat_pairs, pattern_pairs
        from attacks.camouflage.dtn_training import predict
        from attacks.camouflage.pattern_renders import render_patterns

        dtn, record = load_dtn(self._dtn_path())
        config = DatasetConfig(
            views=self.views,
            colours=FLAT_COLOURS,
            size=record.size,
            spp=self.spp,
            seed=self.seed,
            car=self.car,
        )
        if self.texture == "flat":
            pairs = flat_pairs(render_triplets(config))
        else:
            views = render_triplets(DatasetConfig(**{**config.__dict__, "colours": 1})).views
            pairs = pattern_pairs(
                render_patterns(views, PATTERNS_PER_VIEW, record.size, self.spp, self.seed)
            )
        scores = fidelity(dtn, *pairs)
        x_ref, masks, etas, real = pairs
        started = time.perf_counter()
        predicted = predict(dtn, x_ref, masks, etas)
        per_s = len(real) / (time.perf_counter() - started)
        shown = slice(0, EXAMPLES)
        pasted = paste(predicted[shown], x_ref[shown], masks[shown])
        examples = {
            "predicted": _pixels(pasted),
            "real": _pixels(real[shown]),
            "psnr": image_metrics.psnr(pasted, real[shown]).float().contiguous(),
            "st_lpips": image_metrics.st_lpips(pasted, real[shown]).float().contiguous(),
        }
        save_file({k: torch.as_tensor(v) for k, v in examples.items()}, str(folder / EXAMPLES_FILE))
        return {**scores, "dtn_per_s": round(per_s, 2)}


class CamouflageGrid(KindGrid):
    """The axes of a camouflage grid; the cells are their product."""

    kind: Literal["camouflage"]
    measure: Literal["detection", "dtn"] = "detection"
    texture: tuple[str, ...] = Field(min_length=1)
    detector: tuple[str, ...] = Field(("ssdlite",), min_length=1)
    car: tuple[Literal["sedan", "van"], ...] = Field(("sedan",), min_length=1)
    views: int = Field(32, ge=1, le=1000)
    seed: tuple[int, ...] = Field((1,), min_length=1)
    spp: int = Field(8, ge=1)
    dtn: str | None = Field(None, description="DTN checkpoint (default: shipped)")

    @field_validator("texture", "detector", "car", "seed", mode="before")
    @classmethod
    def _one_value_is_a_list(cls, value: Any) -> Any:
        return value if isinstance(value, list | tuple) else [value]

    @model_validator(mode="after")
    def _known_textures(self) -> CamouflageGrid:
        valid = NAMED_TEXTURES if self.measure == "detection" else DTN_TEXTURES
        for texture in self.texture:
            if texture not in valid and not (
                self.measure == "detection" and Path(texture).is_file()
            ):
                extra = " or a pattern file" if self.measure == "detection" else ""
                raise ValueError(
                    f"unknown {self.measure} texture {texture!r}; valid: {', '.join(valid)}{extra}"
                )
        if 0 in self.seed:
            raise ValueError("seed 0 drew the training scenes; held-out views need another seed")
        return self

    def cells(self) -> list[KindCell]:
        """texture × detector × car × seed (``dtn`` cells have no detector)."""
        detectors = self.detector if self.measure == "detection" else (None,)
        cells: dict[str, KindCell] = {}
        for texture in self.texture:
            for detector in detectors:
                for car in self.car:
                    for seed in self.seed:
                        cell = CamouflageCell(
                            measure=self.measure,
                            texture=texture,
                            detector=detector,
                            car=car,
                            views=self.views,
                            seed=seed,
                            spp=self.spp,
                            dtn=self.dtn,
                        )
                        cells.setdefault(cell.cell_id, cell)
        return list(cells.values())


def _pixels(images: Any) -> Any:
    """[0, 1] images as uint8 (what the viewer shows)."""
    import torch

    return (images.clamp(0, 1) * 255).round().to(torch.uint8).contiguous()


def _one_box(boxes: Any) -> Any:
    """A view's true car box (4,), or NaNs where the car shows in no pixel."""
    import torch

    return boxes[0] if len(boxes) else torch.full((4,), float("nan"))


CAMOUFLAGE = CellKind(
    name="camouflage",
    grid=CamouflageGrid,
    key_fields=("measure", "texture", "detector", "car", "views"),
    metrics=(
        "ap50",
        "ap50_through_dtn",
        "mean_confidence",
        "success_rate",
        "dtn_ssim",
        "renders_per_s",
        "attack_wall_s",
        "dtn_per_s",
    ),
)
