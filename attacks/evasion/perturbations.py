"""Apply a Perturbation: FGSM and L∞ PGD from foolbox 3, Gaussian blur from torchvision."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

import torch
from torch import nn
from torchvision.transforms.v2 import functional as tvf

from attacks.evasion.spec import Perturbation

with warnings.catch_warnings():
    # foolbox 3.3.4 imports scipy.ndimage.filters, a namespace SciPy deprecates; nothing of ours.
    warnings.simplefilter("ignore", DeprecationWarning)
    import foolbox

PGD_STEP_FACTOR = 2.5
"""PGD's step size is 2.5 ε / steps (Madry et al. 2018), starting at a random point of the ball."""


def perturb(
    perturbation: Perturbation,
    images: torch.Tensor,
    labels: torch.Tensor,
    model: nn.Module | None = None,
    mean: Sequence[float] = (0.0,),
    std: Sequence[float] = (1.0,),
) -> torch.Tensor:
    """The perturbed images (N, C, H, W) in [0, 1].

    FGSM / PGD are untargeted against ``labels`` on ``model`` (in eval mode), which reads
    images normalised by ``mean`` / ``std``; blur and ``none`` need no model.
    """
    if perturbation.kind == "none":
        return images.clone()
    if perturbation.kind == "blur":
        return gaussian_blur(images, perturbation.sigma)
    if model is None:
        raise ValueError(f"{perturbation.kind} is crafted on a model; none was given")
    classifier = foolbox.PyTorchModel(
        model.eval(),
        bounds=(0.0, 1.0),
        preprocessing={"mean": list(mean), "std": list(std), "axis": -3},
        device=images.device,
    )
    if perturbation.kind == "fgsm":
        attack = foolbox.attacks.FGSM()
    else:
        attack = foolbox.attacks.LinfPGD(
            steps=perturbation.steps, rel_stepsize=PGD_STEP_FACTOR / perturbation.steps
        )
    _, clipped, _ = attack(classifier, images, labels, epsilons=perturbation.eps)
    return clipped.detach()


def gaussian_blur(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur with standard deviation ``sigma`` pixels, kernel 2⌈3σ⌉ + 1 (reflect pad)."""
    kernel = 2 * math.ceil(3 * sigma) + 1
    return tvf.gaussian_blur(images, kernel_size=[kernel, kernel], sigma=[sigma, sigma])
