"""The projection head that maps an encoder's features into the shared embedding space."""

from __future__ import annotations

import torch
from torch import nn


class ProjectionHead(nn.Module):
    """Linear -> LayerNorm -> GELU -> Dropout -> Linear: (B, in_dim) -> (B, embed_dim).

    The hidden width is embed_dim, so the head stays small even on 2048-d ResNet features.
    Output is not normalised; the caller L2-normalises before the contrastive loss.
    """

    def __init__(self, in_dim: int, embed_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(in_dim, embed_dim),
            nn.LayerNorm(embed_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(embed_dim, embed_dim),
        )

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)
