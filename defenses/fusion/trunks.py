"""Train a CIFAR trunk for one stream: the object trunk on whole images, the context trunk on
the context view (centre masked), each with a linear classifier that is dropped afterwards."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional
from torchvision.transforms import v2

from fedsim.data import ImageDataset, normalize
from fedsim.errors import UnknownNameError
from fedsim.models.fusion import ContextStream, cifar_trunk

STREAMS = ("object", "context")
Progress = Callable[[float, float], None]
"""Called with (fraction done, running training loss)."""


def decode_uint8(data: ImageDataset, chunk: int = 5_000) -> tuple[torch.Tensor, torch.Tensor]:
    """Every image of ``data`` as uint8 pixels (N, C, H, W) and labels (N,), decoded in chunks."""
    pixels, labels = [], []
    for start in range(0, len(data), chunk):
        images, batch_labels = data.images(range(start, min(start + chunk, len(data))))
        pixels.append((images * 255).round().to(torch.uint8))
        labels.append(batch_labels)
    return torch.cat(pixels), torch.cat(labels)


def stream_of(name: str, trunk: nn.Module) -> nn.Module:
    """The module a stream's classifier reads: the trunk itself, or its context view."""
    if name not in STREAMS:
        raise UnknownNameError("stream", name, STREAMS)
    return trunk if name == "object" else ContextStream(trunk)


def train_trunk(
    stream: str,
    train: ImageDataset,
    *,
    epochs: int,
    width: int,
    batch_size: int = 128,
    lr: float = 0.1,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> tuple[nn.Module, nn.Linear]:
    """SGD (Nesterov 0.9, weight decay 5e-4, one-cycle lr peaking at ``lr``) with random crops
    (pad 4) and flips; returns the trunk and its linear classifier, on the CPU in eval mode."""
    torch.manual_seed(seed)
    trunk = cifar_trunk(width)
    linear = nn.Linear(8 * width, 10)
    classifier = nn.Sequential(stream_of(stream, trunk), linear).to(device)
    pixels, labels = decode_uint8(train)
    augment = v2.Compose([v2.RandomCrop(32, padding=4), v2.RandomHorizontalFlip()])
    optimizer = torch.optim.SGD(
        classifier.parameters(), lr=lr, momentum=0.9, nesterov=True, weight_decay=5e-4
    )
    steps_per_epoch = len(labels) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=lr, total_steps=epochs * steps_per_epoch
    )
    rng = np.random.default_rng(seed)
    classifier.train()
    done, total, running = 0, epochs * steps_per_epoch, 0.0
    for _ in range(epochs):
        order = torch.from_numpy(rng.permutation(len(labels)))
        for step in range(steps_per_epoch):
            rows = order[step * batch_size : (step + 1) * batch_size]
            batch = torch.stack([augment(image) for image in pixels[rows]]).float() / 255
            images = normalize(batch, train.spec).to(device)
            loss = functional.cross_entropy(classifier(images), labels[rows].to(device))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            done += 1
            running = 0.98 * running + 0.02 * loss.item() if done > 1 else loss.item()
            if progress is not None and (done % 10 == 0 or done == total):
                progress(done / total, running)
    classifier.cpu().eval().requires_grad_(False)
    return trunk, linear


def save_trunk(path: Path, trunk: nn.Module, metadata: dict[str, str]) -> None:
    """Write a trunk's state (float32) as safetensors, with ``metadata`` (command, seed, …)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    state = {name: tensor.contiguous() for name, tensor in trunk.state_dict().items()}
    save_file(state, str(path), metadata=metadata)


@torch.no_grad()
def trunk_accuracy(
    stream: str, trunk: nn.Module, classifier: nn.Module, test: ImageDataset
) -> float:
    """Accuracy in [0, 1] of ``classifier`` on ``stream``'s features over the whole test split."""
    pixels, labels = decode_uint8(test)
    module = stream_of(stream, trunk).eval()
    correct = 0
    for start in range(0, len(labels), 500):
        images = normalize(pixels[start : start + 500].float() / 255, test.spec)
        correct += int((classifier(module(images)).argmax(1) == labels[start : start + 500]).sum())
    return correct / len(labels)
