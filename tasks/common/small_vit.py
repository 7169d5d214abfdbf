"""A tiny Vision Transformer image encoder, (B, 3, S, S) float images -> (B, dim) features.

Patch embedding (a strided convolution plus learned position embeddings), then a few pre-norm
`nn.TransformerEncoder` layers, then the mean over patch tokens. Sized for the CPU demo (32x32
inputs, 4x4 patches, 64-d tokens, 2 layers). Its blocks, top first, are the encoder layers from
last to first and then the patch embedding; the final LayerNorm is in no block, so it always
trains (like a projection head).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from tasks.common.image_encoders import ImageEncoder, load_local_state_dict, state_dict_mismatch


class PatchEmbedding(nn.Module):
    """(B, 3, S, S) -> (B, (S / patch)^2, dim): non-overlapping patches, projected, positioned."""

    def __init__(self, image_size: int, patch_size: int, dim: int):
        super().__init__()
        if image_size % patch_size:
            raise ValueError(f"image size {image_size} is not a multiple of patch size {patch_size}")
        self.projection = nn.Conv2d(3, dim, kernel_size=patch_size, stride=patch_size)
        patches = (image_size // patch_size) ** 2
        self.position = nn.Parameter(torch.randn(1, patches, dim) * 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        tokens = self.projection(images).flatten(2).transpose(1, 2)
        return tokens + self.position


class SmallViT(ImageEncoder):
    """Patch embedding -> `layers` pre-norm transformer encoder layers -> LayerNorm -> token mean."""

    def __init__(
        self,
        image_size: int = 32,
        patch_size: int = 4,
        dim: int = 64,
        layers: int = 2,
        heads: int = 4,
        mlp_ratio: int = 2,
        dropout: float = 0.0,
    ):
        super().__init__()
        self.patch_embedding = PatchEmbedding(image_size, patch_size, dim)
        layer = nn.TransformerEncoderLayer(
            d_model=dim,
            nhead=heads,
            dim_feedforward=mlp_ratio * dim,
            dropout=dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        # Nested tensors only help with padding masks, and warn under norm_first.
        self.encoder = nn.TransformerEncoder(
            layer, num_layers=layers, norm=nn.LayerNorm(dim), enable_nested_tensor=False
        )
        self.feature_dim = dim

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.encoder(self.patch_embedding(images)).mean(dim=1)

    def blocks_top_first(self) -> list[nn.Module]:
        return [*reversed(self.encoder.layers), self.patch_embedding]


def build_small_vit(
    image_size: int,
    patch_size: int,
    dim: int,
    layers: int,
    heads: int,
    weights_path: str | Path | None = None,
) -> SmallViT:
    """A SmallViT, randomly initialised, then loaded from a local state_dict file when given.

    A missing file or a state_dict that does not fit this shape raises ValueError.
    """
    network = SmallViT(image_size, patch_size, dim, layers, heads)
    if weights_path is not None:
        state = load_local_state_dict(weights_path)
        mismatch = state_dict_mismatch(network.state_dict(), state)
        if mismatch:
            raise ValueError(f"backbone_weights {weights_path} does not fit small_vit: {mismatch}")
        network.load_state_dict(state)
    return network
