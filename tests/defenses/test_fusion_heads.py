"""The α regulariser of the fused head and the heads checkpoint names."""

from __future__ import annotations

from pathlib import Path

import datasets
import numpy as np
import torch
from PIL import Image
from torch import nn

from defenses.fusion.heads import heads_file, object_weight_penalty, train_heads
from defenses.fusion.trunks import save_trunk
from fedsim.data import ImageDataset, get_dataset_spec
from fedsim.models.fusion import cifar_trunk


def test_regulariser_gradient_touches_only_object_feature_weights() -> None:
    torch.manual_seed(0)
    fused = nn.Linear(2 * 16, 10)

    object_weight_penalty(fused, 16).backward()

    assert fused.weight.grad[:, :16].abs().min() > 0
    torch.testing.assert_close(fused.weight.grad[:, :16], 2 * fused.weight.detach()[:, :16])
    assert fused.weight.grad[:, 16:].abs().max() == 0
    assert fused.bias.grad is None


def test_heads_file_names_alpha() -> None:
    assert heads_file(0.0) == "heads.safetensors"
    assert heads_file(0.01) == "heads-alpha-0.01.safetensors"


def _tiny_split(count: int, seed: int) -> ImageDataset:
    generator = np.random.default_rng(seed)
    pictures = [
        Image.fromarray(generator.integers(0, 256, (32, 32, 3), dtype=np.uint8))
        for _ in range(count)
    ]
    rows = datasets.Dataset.from_dict(
        {"img": pictures, "label": [i % 10 for i in range(count)]}
    ).cast_column("img", datasets.Image())
    return ImageDataset(get_dataset_spec("cifar10"), "train", rows, "test images")


def test_train_heads_sweeps_alpha_from_one_start(tmp_path: Path) -> None:
    torch.manual_seed(0)
    for stream in ("object", "context"):
        save_trunk(tmp_path / f"{stream}.safetensors", cifar_trunk(4).eval(), {"width": "4"})

    results = train_heads(
        tmp_path, _tiny_split(40, 0), _tiny_split(20, 1), alphas=(0.0, 1.0), epochs=3, lr=0.05
    )
    norms = {a: r.heads["heads.fused.weight"][:, :32].norm() for a, r in results.items()}
    context = {a: r.heads["heads.fused.weight"][:, 32:].norm() for a, r in results.items()}

    assert set(results[0.0].heads) == {
        f"heads.{h}.{p}" for h in ("object", "context", "fused") for p in ("weight", "bias")
    }
    assert all(0 <= v <= 1 for r in results.values() for v in r.accuracy.values())
    assert norms[1.0] < norms[0.0]
    assert context[1.0] > 0
    torch.testing.assert_close(  # the single-stream heads do not depend on α
        results[1.0].heads["heads.object.weight"], results[0.0].heads["heads.object.weight"]
    )
