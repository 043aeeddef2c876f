"""A texture judged in the renderer: Mitsuba renders of held-out views painted with it, the
detector's car boxes on them, and AP@0.5 (torchmetrics), confidence and attack success; the same
views through the DTN pipeline give the pipeline's AP beside the renderer's."""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torchmetrics.detection import MeanAveragePrecision
from torchvision.ops import box_iou

from attacks import metrics
from attacks.camouflage.attack import dtn_images, image_batch, render_attack_scenes
from attacks.camouflage.detection_data import mask_box
from attacks.camouflage.detector import car_detections
from attacks.camouflage.dtn import DTN
from attacks.camouflage.renderer import (
    REFERENCE_PAINT,
    TILE_SIZE_M,
    View,
    render_image,
    render_mask,
)

# A detection counts as finding the car at IoU above this and score at least SCORE_HIT.
IOU_HIT, SCORE_HIT = 0.5, 0.5


def detection_scores(
    found: list[dict[str, torch.Tensor]], targets: list[torch.Tensor]
) -> dict[str, float | int]:
    """Scores of car detections ``found`` (boxes, scores per image) against the true car boxes
    (B, 4) of each image: ``ap50`` (AP at IoU 0.5, COCO's 101-point interpolation, in [0, 1]),
    ``mean_confidence`` (mean of each image's highest car score, 0 where none), ``success_rate``
    (fraction of images where no detection with score ≥ 0.5 has IoU > 0.5 with the car), and
    ``views``."""
    metric = MeanAveragePrecision(box_format="xyxy", iou_type="bbox", iou_thresholds=[0.5])
    # COCO's cap: each image's 100 best detections count (detectors here keep every score).
    metric.warn_on_many_detections = False
    metric.update(
        [{**f, "labels": torch.zeros(len(f["scores"]), dtype=torch.int64)} for f in found],
        [{"boxes": t, "labels": torch.zeros(len(t), dtype=torch.int64)} for t in targets],
    )
    confidences = [float(f["scores"].max()) if len(f["scores"]) else 0.0 for f in found]
    hits = [_finds_car(f, t) for f, t in zip(found, targets, strict=True)]
    return {
        "ap50": float(metric.compute()["map"]),
        "mean_confidence": float(np.mean(confidences)),
        "success_rate": 1.0 - float(np.mean(hits)),
        "views": len(found),
    }


def _finds_car(found: dict[str, torch.Tensor], target: torch.Tensor) -> bool:
    """Whether any detection with score ≥ SCORE_HIT overlaps a true car box by IoU > IOU_HIT."""
    sure = found["boxes"][found["scores"] >= SCORE_HIT]
    if not len(sure) or not len(target):
        return False
    return bool((box_iou(sure, target) > IOU_HIT).any())


def detect(
    detector: nn.Module, images: torch.Tensor, car_label: int, batch_size: int = 16
) -> list[dict[str, torch.Tensor]]:
    """Car detections on (N, 3, H, W) images, in batches, without gradients."""
    with torch.no_grad():
        return [
            found
            for chunk in images.split(batch_size)
            for found in car_detections(detector, chunk, car_label)
        ]


@dataclass(frozen=True)
class TextureEvaluation:
    """A texture judged: its ``scores`` (see :func:`evaluate_texture`), the Mitsuba renders
    (N, 3, H, W) sRGB in [0, 1] with the detector's car boxes and scores ``found`` on each and
    the true car boxes ``targets``, the DTN pipeline's images of the same views (None without a
    DTN), and ``render_s``, the seconds spent rendering the textured views."""

    scores: dict[str, float | int | None]
    rendered: torch.Tensor
    found: list[dict[str, torch.Tensor]]
    targets: list[torch.Tensor]
    piped: torch.Tensor | None
    render_s: float


def evaluate_texture(
    detector: nn.Module,
    car_label: int,
    views: list[View],
    texture: torch.Tensor | None,
    *,
    size: int,
    spp: int,
    tile_m: float = TILE_SIZE_M,
    dtn: DTN | None = None,
    projection: str = "surface",
    workers: int = 1,
) -> TextureEvaluation:
    """:func:`detection_scores` of ``texture`` (None: the reference paint; else (3, h, w) sRGB,
    one repeat per ``tile_m`` metres) rendered in Mitsuba on ``views``, and
    ``ap50_through_dtn``: the same views' reference renders painted with it by the DTN
    pipeline, laid by ``projection`` jitter-free, with ``dtn_ssim`` and ``dtn_psnr`` (dB) of
    those pipeline images against the renders (None / absent without a DTN). The pipeline's
    reference views (a one-thread AOV pass and a render each) render in ``workers``
    processes."""
    scenes = render_attack_scenes(views, size, spp, tile_m, workers) if dtn is not None else None
    masks = (
        scenes.masks
        if scenes is not None
        else torch.from_numpy(np.stack([render_mask(view, size) for view in views]))
    )
    targets = [mask_box(mask) for mask in masks]
    started = time.perf_counter()
    rendered = image_batch([render_image(view, texture, size, spp, tile_m) for view in views])
    render_s = time.perf_counter() - started
    found = detect(detector, rendered, car_label)
    scores: dict[str, float | int | None] = {
        **detection_scores(found, targets),
        "ap50_through_dtn": None,
    }
    piped = None
    if scenes is not None:
        pattern = torch.tensor(REFERENCE_PAINT)[:, None, None] if texture is None else texture
        with torch.no_grad():
            piped = dtn_images(pattern, dtn.eval(), scenes, torch.arange(len(views)), projection)
        through = detection_scores(detect(detector, piped, car_label), targets)
        scores["ap50_through_dtn"] = through["ap50"]
        scores["dtn_ssim"] = float(metrics.ssim(piped, rendered).mean())
        scores["dtn_psnr"] = float(metrics.psnr(piped, rendered).mean())
    return TextureEvaluation(scores, rendered, found, targets, piped, render_s)
