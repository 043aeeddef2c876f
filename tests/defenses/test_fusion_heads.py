"""The α regulariser of the fused head and the heads checkpoint names."""

from __future__ import annotations

import torch
from torch import nn

from defenses.fusion.heads import heads_file, object_weight_penalty


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
