"""The Differentiable Transformation Network of DTA: from the reference render x_ref and the
expected texture η (both masked to the car) it predicts four maps TF1..TF4 and composes
x_ren = ReLU((ReLU(η − TF1) + TF2) ⊙ TF3 + TF4)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from fedsim.errors import UserInputError
from fedsim.storage import load_tensors, save_tensors

LEVELS = 4


def compose(eta: torch.Tensor, transforms: torch.Tensor) -> torch.Tensor:
    """x_ren = ReLU((ReLU(η − TF1) + TF2) ⊙ TF3 + TF4) for η (N, 3, H, W) and the maps
    (N, 12, H, W) stacked as TF1..TF4, three channels each."""
    tf1, tf2, tf3, tf4 = transforms.chunk(4, dim=1)
    return F.relu((F.relu(eta - tf1) + tf2) * tf3 + tf4)


def paste(rendered: torch.Tensor, background: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The car as the DTN painted it over the rest of the scene: x ⊙ m + x_orig ⊙ (1 − m)."""
    mask = mask if mask.dim() == 4 else mask[:, None]
    return rendered * mask + background * (1 - mask)


class DTN(nn.Module):
    """A 4-level U-Net: (x_ref ⊙ m, η ⊙ m) in, the 12 transform channels out.

    Images are (N, 3, H, W) sRGB in [0, 1], masks (N, H, W) in [0, 1].
    """

    def __init__(self, width: int = 32) -> None:
        super().__init__()
        self.width = width
        channels = [width * 2**level for level in range(LEVELS)]
        self.encoders = nn.ModuleList()
        inputs = 6
        for out in channels:
            self.encoders.append(_block(inputs, out))
            inputs = out
        self.decoders = nn.ModuleList(
            _block(channels[level + 1] + channels[level], channels[level])
            for level in reversed(range(LEVELS - 1))
        )
        self.head = nn.Conv2d(channels[0], 12, kernel_size=1)
        # Start as the identity x_ren = η: TF1 = TF2 = TF4 = 0 and TF3 = 1.
        nn.init.zeros_(self.head.weight)
        with torch.no_grad():
            self.head.bias.copy_(torch.tensor([0.0] * 6 + [1.0] * 3 + [0.0] * 3))

    def transforms(
        self, x_ref: torch.Tensor, mask: torch.Tensor, eta: torch.Tensor
    ) -> torch.Tensor:
        """The maps TF1..TF4, (N, 12, H, W)."""
        m = mask[:, None]
        x = torch.cat([x_ref * m, eta * m], dim=1)
        skips = []
        for level, encoder in enumerate(self.encoders):
            x = encoder(x if level == 0 else F.max_pool2d(x, 2))
            skips.append(x)
        for decoder, skip in zip(self.decoders, reversed(skips[:-1]), strict=True):
            x = decoder(
                torch.cat([F.interpolate(x, size=skip.shape[-2:], mode="bilinear"), skip], dim=1)
            )
        return self.head(x)

    def forward(self, x_ref: torch.Tensor, mask: torch.Tensor, eta: torch.Tensor) -> torch.Tensor:
        """The predicted render of the car painted with η, zero outside the mask, (N, 3, H, W)."""
        return compose(eta * mask[:, None], self.transforms(x_ref, mask, eta)) * mask[:, None]


def _block(inputs: int, outputs: int) -> nn.Sequential:
    """Two 3×3 convolutions, each with group norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(inputs, outputs, 3, padding=1),
        nn.GroupNorm(8, outputs),
        nn.ReLU(inplace=True),
        nn.Conv2d(outputs, outputs, 3, padding=1),
        nn.GroupNorm(8, outputs),
        nn.ReLU(inplace=True),
    )


@dataclass(frozen=True)
class DTNRecord:
    """What a DTN checkpoint says about how it was trained."""

    width: int
    size: int  # image side of its training renders, pixels
    car: str
    data_seed: int  # the seed its training views and colours were drawn from
    steps: int
    seed: int
    command: str
    train_loss: float  # mean squared error on the car's pixels over the last steps


def save_dtn(path: Path, model: DTN, record: DTNRecord, run: dict | None = None) -> None:
    """Write the DTN's weights (float32 safetensors) with its record, and ``run`` (versions,
    commit, time) under "provenance", as metadata."""
    save_tensors(path, model.state_dict(), {**asdict(record), "provenance": run or {}})


def load_dtn(path: Path) -> tuple[DTN, DTNRecord]:
    """Read a checkpoint written by :func:`save_dtn`, in eval mode."""
    if not Path(path).is_file():
        raise UserInputError(
            f"no DTN checkpoint at {str(path)!r}; train one: fedleak dta train-dtn"
        )
    tensors, meta = load_tensors(Path(path))
    record = DTNRecord(**{field.name: meta[field.name] for field in fields(DTNRecord)})
    model = DTN(width=record.width)
    model.load_state_dict(tensors)
    return model.eval(), record
