"""Train the three linear heads on frozen trunk features, with the α regulariser on the fused
head's object-feature weights (α‖W_obj‖², biasing the joint decision towards context)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional

from fedsim.data import ImageDataset, normalize
from fedsim.models.fusion import HEADS, ContextualFusion, TrunkPaths, load_fusion

Progress = Callable[[float, float], None]
"""Called with (fraction done, current loss)."""


@dataclass(frozen=True)
class HeadsResult:
    """Trained heads (a ``ContextualFusion.state_dict``) and each head's test accuracy in [0, 1]."""

    heads: dict[str, torch.Tensor]
    accuracy: dict[str, float]


def heads_file(alpha: float) -> str:
    """The heads checkpoint's file name for regulariser strength ``alpha``."""
    return "heads.safetensors" if alpha == 0 else f"heads-alpha-{alpha:g}.safetensors"


def object_weight_penalty(fused_head: nn.Linear, feature_dim: int) -> torch.Tensor:
    """‖W_obj‖²: the squared norm of the fused head's weights on the first (object) features."""
    return fused_head.weight[:, :feature_dim].pow(2).sum()


@torch.no_grad()
def stream_features(
    model: ContextualFusion, data: ImageDataset, device: torch.device, batch_size: int = 500
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Object features, context features (both [N, D]) and labels of every image in ``data``."""
    from defenses.fusion.trunks import decode_uint8

    pixels, labels = decode_uint8(data)
    model.eval().to(device)
    object_parts, context_parts = [], []
    for start in range(0, len(labels), batch_size):
        images = normalize(pixels[start : start + batch_size].float() / 255, data.spec)
        object_features, context_features = model.features(images.to(device))
        object_parts.append(object_features.cpu())
        context_parts.append(context_features.cpu())
    return torch.cat(object_parts), torch.cat(context_parts), labels


def train_heads(
    checkpoint_dir: Path,
    train: ImageDataset,
    test: ImageDataset,
    *,
    alphas: Sequence[float] = (0.0,),
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
    trunks: TrunkPaths | None = None,
) -> dict[float, HeadsResult]:
    """For each α, Adam on cached features (extracted once, no augmentation) of the sum of the
    three heads' cross-entropies plus α‖W_obj‖², each from the same seeded start; on the
    folder's CIFAR trunks, or the user's ImageNet / Places365 ones (``trunks``, 224 px)."""
    where = torch.device(device)
    model = load_fusion(checkpoint_dir, heads_file=None, trunks=trunks)
    chunk = 500 if trunks is None else 32  # 224 px activations are ~50 times larger
    train_features = stream_features(model, train, where, chunk)
    test_features = stream_features(model, test, where, chunk)
    steps_per_epoch = -(-len(train_features[2]) // batch_size)
    total = len(alphas) * epochs * steps_per_epoch
    results = {}
    for index, alpha in enumerate(alphas):
        torch.manual_seed(seed)
        fresh = ContextualFusion(
            model.object_stream, model.context_stream.trunk, model.feature_dim
        ).eval()
        offset = index * epochs * steps_per_epoch

        def report(done: int, loss: float, offset: int = offset) -> None:
            if progress is not None:
                progress((offset + done) / total, loss)

        _fit(fresh, train_features, alpha, epochs, batch_size, lr, seed, where, report)
        results[alpha] = HeadsResult(
            heads={k: v.detach().contiguous() for k, v in fresh.state_dict().items()},
            accuracy=_test_accuracy(fresh, test_features),
        )
    return results


def _fit(
    model: ContextualFusion,
    features: tuple[torch.Tensor, torch.Tensor, torch.Tensor],
    alpha: float,
    epochs: int,
    batch_size: int,
    lr: float,
    seed: int,
    device: torch.device,
    report: Callable[[int, float], None],
) -> None:
    object_features, context_features, labels = features
    heads = model.heads.to(device).requires_grad_(True).train()
    optimizer = torch.optim.Adam(heads.parameters(), lr=lr)
    steps = epochs * -(-len(labels) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, steps)
    generator = torch.Generator().manual_seed(seed)
    done = 0
    for _ in range(epochs):
        order = torch.randperm(len(labels), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits = model.head_logits(
                object_features[rows].to(device), context_features[rows].to(device)
            )
            target = labels[rows].to(device)
            loss = sum(functional.cross_entropy(logits[name], target) for name in HEADS)
            loss = loss + alpha * object_weight_penalty(heads["fused"], model.feature_dim)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            done += 1
            if done % 50 == 0 or done == steps:
                report(done, loss.item())
    heads.requires_grad_(False).eval().cpu()


@torch.no_grad()
def _test_accuracy(
    model: ContextualFusion, features: tuple[torch.Tensor, torch.Tensor, torch.Tensor]
) -> dict[str, float]:
    object_features, context_features, labels = features
    logits = model.head_logits(object_features, context_features)
    return {
        f"{name}_test_accuracy": float((logits[name].argmax(1) == labels).float().mean())
        for name in HEADS
    }


def save_heads(path: Path, heads: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write the heads' state as safetensors with ``metadata`` (command, seed, accuracies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(heads, str(path), metadata=metadata)
