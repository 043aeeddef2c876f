"""How far the shipped ssdlite can be fooled through the car's pixels at all: free colours on
every car pixel of 8 training views (no pattern, no DTN), the DTA attack's loss, Adam; with
``--paint-only``, on the painted share of each pixel only (glass, tyres and lights unchanged).

    .venv/bin/python benchmarks/dta_free_pixels.py [--steps 150] [--views 8] [--paint-only]

Prints each view's best car score every 25 steps and ends with one JSON line: the final scores
and ``ap50`` / ``success_rate`` of the final images (torchmetrics, as ``fedleak dta evaluate``
scores renders), beside the same views in the reference paint: the best AP any paint job,
one per view, reaches against this detector (a digital bound; no renderer in the loop). Not a
test.
"""

from __future__ import annotations

import argparse
import json

import torch

from attacks.camouflage.attack import SCORE_FLOOR, car_score_loss, render_attack_scenes
from attacks.camouflage.detector import car_detections, load_detector
from attacks.camouflage.evaluation import detect, detection_scores
from attacks.camouflage.renderer import sample_scene_views
from attacks.camouflage.shipped import SCRATCH_DETECTOR, SHIPPED_DETECTORS


def main() -> None:
    """Optimise the car pixels of the first training views and report the car scores."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--views", type=int, default=8)
    parser.add_argument("--paint-only", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    model, record = load_detector(SHIPPED_DETECTORS[SCRATCH_DETECTOR])
    model.eval().requires_grad_(False)
    scenes = render_attack_scenes(sample_scene_views(args.views, 0), record.size, spp=8)
    masks = scenes.masks[:, None]
    if args.paint_only:  # the paint's share of each pixel, from the supersampled surface
        masks = masks * torch.stack([paint.share for paint in scenes.paint])[:, None]
    logits = torch.logit(scenes.x_ref.clamp(0.02, 0.98)).requires_grad_(True)
    optimiser = torch.optim.Adam([logits], lr=0.1)
    for step in range(args.steps + 1):
        images = torch.sigmoid(logits) * masks + scenes.x_ref * (1 - masks)
        found = car_detections(model, images, record.car_label)
        loss, top = car_score_loss(found, scenes.boxes)
        if step % 25 == 0 or step == args.steps:
            print(step, f"loss {float(loss.detach()):.2f}", [round(float(t), 3) for t in top])
        if step < args.steps:
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    scores = [round(float(t), 4) for t in top]
    under = sum(score <= SCORE_FLOOR for score in scores)
    summary = {"steps": args.steps, "views": args.views, "paint_only": args.paint_only}
    summary |= {"top": scores, "under_floor": under}
    for name, batch in (("reference", scenes.x_ref), ("free", images.detach())):
        judged = detection_scores(detect(model, batch, record.car_label), scenes.boxes)
        summary |= {f"{name}_ap50": judged["ap50"], f"{name}_success_rate": judged["success_rate"]}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
