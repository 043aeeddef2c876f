"""Train the three linear heads on frozen trunk features, with the α regulariser on the fused
head's object-feature weights (α‖W_obj‖², biasing the joint decision towards context)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import save_file
from torch import nn
from torch.nn import functional

from fedsim.data import ImageDataset, normalize
from fedsim.models.fusion import HEADS, ContextualFusion, load_fusion

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
    alpha: float = 0.0,
    epochs: int = 30,
    batch_size: int = 256,
    lr: float = 1e-2,
    seed: int = 0,
    device: torch.device | str = "cpu",
    progress: Progress | None = None,
) -> HeadsResult:
    """Adam on cached features: the sum of the three heads' cross-entropies plus α‖W_obj‖²."""
    torch.manual_seed(seed)
    where = torch.device(device)
    model = load_fusion(checkpoint_dir, heads_file=None)
    train_object, train_context, train_labels = stream_features(model, train, where)
    test_object, test_context, test_labels = stream_features(model, test, where)
    heads = model.heads.to(where).requires_grad_(True).train()
    optimizer = torch.optim.Adam(heads.parameters(), lr=lr)
    steps_per_epoch = -(-len(train_labels) // batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs * steps_per_epoch)
    generator = torch.Generator().manual_seed(seed)
    done, total = 0, epochs * steps_per_epoch
    for _ in range(epochs):
        order = torch.randperm(len(train_labels), generator=generator)
        for start in range(0, len(order), batch_size):
            rows = order[start : start + batch_size]
            logits = model.head_logits(train_object[rows].to(where), train_context[rows].to(where))
            labels = train_labels[rows].to(where)
            loss = sum(functional.cross_entropy(logits[name], labels) for name in HEADS)
            loss = loss + alpha * object_weight_penalty(heads["fused"], model.feature_dim)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            done += 1
            if progress is not None and (done % 50 == 0 or done == total):
                progress(done / total, float(loss))
    heads.eval().cpu()
    with torch.no_grad():
        logits = model.cpu().head_logits(test_object, test_context)
    accuracy = {
        f"{name}_test_accuracy": float((logits[name].argmax(1) == test_labels).float().mean())
        for name in HEADS
    }
    state = {key: value.detach().contiguous() for key, value in model.state_dict().items()}
    return HeadsResult(heads=state, accuracy=accuracy)


def save_heads(path: Path, heads: dict[str, torch.Tensor], metadata: dict[str, str]) -> None:
    """Write the heads' state as safetensors with ``metadata`` (command, seed, accuracies)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file(heads, str(path), metadata=metadata)
