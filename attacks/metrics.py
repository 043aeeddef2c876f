"""Score reconstructions against the real images: PSNR, SSIM, LPIPS, batch pairing, labels.

Image arguments are float tensors of shape (N, C, H, W) with pixels in [0, 1] (de-normalised).
"""

from __future__ import annotations

import functools
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from importlib import resources
from itertools import chain
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from scipy.optimize import linear_sum_assignment
from torchmetrics.functional.image import (
    peak_signal_noise_ratio,
    structural_similarity_index_measure,
)

from fedsim.errors import FedleakError, UserInputError
from fedsim.network import why_unreachable

# AlexNet's pooling shrinks images under 32 px to nothing (28 px MNIST fails), so both LPIPS
# variants upsample smaller images bilinearly to a 32 px short side.
_LPIPS_MIN_SIDE = 32


@dataclass(frozen=True)
class OptionalMetric:
    """Per-image values of a metric that may be unavailable; then ``values`` is None and
    ``reason`` says why."""

    values: torch.Tensor | None
    reason: str | None = None

    def __post_init__(self) -> None:
        if (self.values is None) == (self.reason is None):
            raise ValueError("OptionalMetric needs exactly one of values and reason")


def psnr(rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Peak signal-to-noise ratio per image in dB (data range 1.0), shape (N,); +inf if equal."""
    _check_pair(rec, ref)
    return peak_signal_noise_ratio(rec, ref, data_range=1.0, reduction="none", dim=(1, 2, 3))


def ssim(rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Structural similarity per image (Gaussian window, data range 1.0), shape (N,); 1 if equal."""
    _check_pair(rec, ref)
    return structural_similarity_index_measure(rec, ref, data_range=1.0, reduction="none")


def lpips_alex(rec: torch.Tensor, ref: torch.Tensor) -> OptionalMetric:
    """LPIPS-alex (ImageNet AlexNet trunk) per image, lower is closer; or why it is unavailable."""
    _check_pair(rec, ref)
    model = _lpips_alex_model()
    if isinstance(model, str):
        return OptionalMetric(values=None, reason=model)
    return OptionalMetric(values=_lpips_distance(model, rec, ref))


def st_lpips(rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Shift-tolerant LPIPS (AlexNet, weights from stlpips-pytorch) per image, shape (N,)."""
    _check_pair(rec, ref)
    return _lpips_distance(_st_lpips_model(), rec, ref)


def pair_by_best_match(rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    """Permutation ``perm`` so that rec[perm[i]] pairs with ref[i] at least total MSE (Hungarian).

    Gradient inversion returns a batch in arbitrary order; ``rec`` may hold more images than
    ``ref`` (extra ones stay unpaired).
    """
    if rec.dim() != 4 or rec.shape[1:] != ref.shape[1:] or len(rec) < len(ref):
        raise UserInputError(
            f"cannot pair reconstructions {tuple(rec.shape)} with references {tuple(ref.shape)}: "
            "need (N, C, H, W) images of one size and at least as many reconstructions"
        )
    squared_distance = torch.cdist(rec.flatten(1).double(), ref.flatten(1).double()) ** 2
    rec_rows, ref_cols = linear_sum_assignment(squared_distance.cpu().numpy())
    perm = torch.empty(len(ref), dtype=torch.long)
    perm[torch.as_tensor(ref_cols)] = torch.as_tensor(rec_rows, dtype=torch.long)
    return perm


def label_accuracy(
    predicted: Sequence[int] | torch.Tensor, true: Sequence[int] | torch.Tensor
) -> float:
    """Fraction of true labels recovered in [0, 1], order-free and counting multiplicity."""
    truth = Counter(torch.as_tensor(true).flatten().tolist())
    if not truth:
        raise UserInputError("label_accuracy needs at least one true label")
    found = Counter(torch.as_tensor(predicted).flatten().tolist()) & truth
    return sum(found.values()) / sum(truth.values())


def _check_pair(rec: torch.Tensor, ref: torch.Tensor) -> None:
    if rec.dim() != 4 or rec.shape != ref.shape:
        raise UserInputError(
            f"need two (N, C, H, W) image batches of one shape; got {tuple(rec.shape)} "
            f"and {tuple(ref.shape)}"
        )


@functools.cache
def _lpips_alex_model() -> torch.nn.Module | str:
    """The LPIPS-alex model, built once; a string says why it cannot be built."""
    import lpips
    from torchvision.models import AlexNet_Weights

    url = AlexNet_Weights.IMAGENET1K_V1.url
    checkpoint = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    if not checkpoint.is_file():
        # torchvision's download has no timeout; probe first so offline runs answer in seconds.
        why = why_unreachable(urlparse(url).hostname or "")
        if why:
            return f"AlexNet weights not cached at {checkpoint} and not downloadable ({why})"
    created = [folder for folder in (checkpoint.parent, *checkpoint.parents) if not folder.exists()]
    try:
        with warnings.catch_warnings():
            # lpips asks torchvision for `pretrained=True`, deprecated but still honoured.
            warnings.simplefilter("ignore", UserWarning)
            model = lpips.LPIPS(net="alex", verbose=False)
    except Exception as error:  # any failure must become a reason, never a random-trunk score
        # torch.hub removes its partial file itself; the folders it made for it are ours to undo.
        for folder in created:
            if folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
        return f"LPIPS-alex unavailable: {type(error).__name__}: {' '.join(str(error).split())}"
    return model.eval().requires_grad_(False)


@functools.cache
def _st_lpips_model() -> torch.nn.Module:
    """The shift-tolerant LPIPS-alex model, built once from the weights in its package."""
    from stlpips_pytorch import stlpips

    model = stlpips.LPIPS(net="alex", variant="shift_tolerant", pretrained=False, verbose=False)
    weights = resources.files("stlpips_pytorch") / "weights" / "vST0.0" / "alex_shift_tolerant.pth"
    with resources.as_file(weights) as path:
        state = torch.load(path, map_location="cpu")
    # stlpips loads with strict=False, which would leave a random trunk unnoticed; check first.
    # (Its `lins.*` keys alias `lin0..lin4`, which the file holds, so they count as present.)
    missing = {name for name, _ in chain(model.named_parameters(), model.named_buffers())}
    missing -= state.keys()
    if missing:
        raise FedleakError(f"st_lpips weights {weights} lack {', '.join(sorted(missing))}")
    model.load_state_dict(state, strict=False)
    return model.eval().requires_grad_(False)


def _lpips_distance(model: torch.nn.Module, rec: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        model.to(rec.device)
        return model(_lpips_input(rec), _lpips_input(ref)).flatten()


def _lpips_input(images: torch.Tensor) -> torch.Tensor:
    """RGB in [-1, 1] with a short side of at least 32 px, as both LPIPS models expect."""
    if images.shape[1] not in (1, 3):
        raise UserInputError(f"LPIPS needs 1 or 3 channels; got {images.shape[1]}")
    images = images.float().expand(-1, 3, -1, -1)
    short_side = min(images.shape[-2:])
    if short_side < _LPIPS_MIN_SIDE:
        size = [round(side * _LPIPS_MIN_SIDE / short_side) for side in images.shape[-2:]]
        images = F.interpolate(images, size=size, mode="bilinear", align_corners=False)
    return images * 2 - 1
