"""Pictures of an attack run: its loss and car-score curves, and its pattern on the car rendered
in Mitsuba beside the DTN's prediction of the same view."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from attacks.camouflage.attack import AttackScenes, dtn_images
from attacks.camouflage.dtn import DTN
from attacks.camouflage.renderer import render_image

# Small renders are drawn this many times larger, one block per pixel.
UPSCALE = 4


def plot_curves(path: Path, losses: list[float], scores: list[float]) -> None:
    """A PNG of the attack per step: its loss (log-odds of the car scores above the floor) and
    s, the mean highest score of a detection finding the car in the step's views."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    figure, (left, right) = plt.subplots(1, 2, figsize=(8, 3), dpi=100)
    steps = range(1, len(losses) + 1)
    left.plot(steps, losses)
    left.set_ylabel("loss Σ log-odds above floor")
    right.plot(steps, scores)
    right.set_ylabel("highest car score s")
    right.set_ylim(0, 1)
    for axes in (left, right):
        axes.set_xlabel("Adam step")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def save_renders(
    path: Path,
    pattern: torch.Tensor,
    scenes: AttackScenes,
    dtn: DTN,
    spp: int,
    projection: str,
    count: int = 4,
) -> None:
    """A PNG grid over the first ``count`` views: the pattern rendered in Mitsuba (top row) and
    as the DTN pipeline paints it by ``projection``, jitter-free (bottom row)."""
    chosen = torch.arange(min(count, len(scenes.views)))
    size = scenes.x_ref.shape[-1]
    real = [render_image(scenes.views[i], pattern, size, spp, scenes.tile_m) for i in chosen]
    with torch.no_grad():
        piped = dtn_images(pattern, dtn.eval(), scenes, chosen, projection)
    rows = [
        np.concatenate(real, axis=1),
        np.concatenate(list(piped.numpy().transpose(0, 2, 3, 1)), axis=1),
    ]
    grid = np.rint(np.clip(np.concatenate(rows, axis=0), 0, 1) * 255).astype(np.uint8)
    image = Image.fromarray(grid)
    image.resize((image.width * UPSCALE, image.height * UPSCALE), Image.NEAREST).save(path)
