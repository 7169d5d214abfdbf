"""The shared-backbone view encoder: one image backbone and one projection head for both views."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from tasks.common.image_encoders import ImageEncoder, build_image_encoder
from tasks.common.projection import ProjectionHead
from tasks.common.small_vit import build_small_vit
from tasks.multiview.config import MultiviewConfig


class ViewEncoder(nn.Module):
    """Maps a view of an object to an L2-normalised (B, embed_dim) embedding.

    Both views go through the same weights (a siamese encoder): two views of one object must
    land together, and the model cannot tell which view it is given.
    """

    def __init__(self, backbone: ImageEncoder, embed_dim: int, dropout: float):
        super().__init__()
        self.backbone = backbone
        self.head = ProjectionHead(backbone.feature_dim, embed_dim, dropout)

    def encode_views(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised float images -> (B, embed_dim) unit vectors."""
        return F.normalize(self.head(self.backbone(images)), dim=-1)

    def unfreezable_blocks(self, pretrained: bool) -> dict[str, list[nn.Module]]:
        """The backbone's blocks, top first, when it is pretrained; nothing otherwise.

        A backbone from random init always trains: freezing random weights only hides the input.
        """
        return {"backbone": self.backbone.blocks_top_first()} if pretrained else {}


def build_backbone(config: MultiviewConfig) -> ImageEncoder:
    """The configured backbone, loaded from `backbone_weights` when set (ValueError if unusable)."""
    if config.backbone == "small_vit":
        return build_small_vit(
            image_size=config.image_size,
            patch_size=config.vit_patch_size,
            dim=config.vit_dim,
            layers=config.vit_layers,
            heads=config.vit_heads,
            weights_path=config.backbone_weights,
        )
    return build_image_encoder(config.backbone, config.backbone_weights)


def build_view_encoder(config: MultiviewConfig) -> ViewEncoder:
    """The model of one trial, on CPU (call after seeding torch)."""
    return ViewEncoder(build_backbone(config), config.embed_dim, config.projection_dropout)
