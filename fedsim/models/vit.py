"""A small Vision Transformer (Dosovitskiy et al. 2021) sized for 28x28 and 32x32 images."""

from __future__ import annotations

import torch
from torch import nn

from fedsim.errors import UserInputError
from fedsim.models.dropout import MaskedDropout

PATCH_SIZE = 4
_DIM = 256
_DEPTH = 4
_HEADS = 16
_MLP_HIDDEN = 256


class Attention(nn.Module):
    """Multi-head self-attention written out so both of its dropouts are nn.Dropout modules."""

    def __init__(self, dim: int, heads: int, dropout: float) -> None:
        super().__init__()
        self.heads = heads
        self.scale = (dim // heads) ** -0.5
        self.qkv = nn.Linear(dim, 3 * dim)
        self.attention_dropout = MaskedDropout(dropout)
        self.projection = nn.Linear(dim, dim)
        self.projection_dropout = MaskedDropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Attend over tokens [N, T, D]."""
        batch, tokens, dim = x.shape
        qkv = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads)
        query, key, value = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        weights = (query @ key.transpose(-2, -1) * self.scale).softmax(dim=-1)
        mixed = self.attention_dropout(weights) @ value
        mixed = mixed.transpose(1, 2).reshape(batch, tokens, dim)
        return self.projection_dropout(self.projection(mixed))


class Block(nn.Module):
    """Pre-norm transformer block: attention then a GELU feed-forward, each residual."""

    def __init__(self, dim: int, heads: int, mlp_hidden: int, dropout: float) -> None:
        super().__init__()
        self.attention_norm = nn.LayerNorm(dim)
        self.attention = Attention(dim, heads, dropout)
        self.feed_forward_norm = nn.LayerNorm(dim)
        self.feed_forward = nn.Sequential(
            nn.Linear(dim, mlp_hidden),
            nn.GELU(),
            MaskedDropout(dropout),
            nn.Linear(mlp_hidden, dim),
            MaskedDropout(dropout),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Transform tokens [N, T, D]."""
        x = x + self.attention(self.attention_norm(x))
        return x + self.feed_forward(self.feed_forward_norm(x))


class ViTSmall(nn.Module):
    """Patch-4 ViT: dim 256, depth 4, 16 heads, MLP hidden 256, classified from the cls token."""

    def __init__(self, image_shape: tuple[int, int, int], num_classes: int, dropout: float) -> None:
        super().__init__()
        channels, height, width = image_shape
        if height % PATCH_SIZE or width % PATCH_SIZE:
            raise UserInputError(
                f"vit-small needs image height and width divisible by its patch size "
                f"{PATCH_SIZE}; got {height}x{width}"
            )
        num_patches = (height // PATCH_SIZE) * (width // PATCH_SIZE)
        self.patch_embedding = nn.Conv2d(channels, _DIM, PATCH_SIZE, stride=PATCH_SIZE)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, _DIM))
        self.position_embedding = nn.Parameter(torch.zeros(1, num_patches + 1, _DIM))
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        nn.init.trunc_normal_(self.position_embedding, std=0.02)
        self.embedding_dropout = MaskedDropout(dropout)
        self.blocks = nn.Sequential(
            *(Block(_DIM, _HEADS, _MLP_HIDDEN, dropout) for _ in range(_DEPTH))
        )
        self.norm = nn.LayerNorm(_DIM)
        self.head = nn.Linear(_DIM, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Map images [N, C, H, W] to logits [N, classes]."""
        patches = self.patch_embedding(x).flatten(2).transpose(1, 2)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)
        tokens = torch.cat((cls, patches), dim=1) + self.position_embedding
        tokens = self.blocks(self.embedding_dropout(tokens))
        return self.head(self.norm(tokens[:, 0]))
