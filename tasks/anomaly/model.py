"""The detector: a CNN over the image, a PointNet over the cloud, points attending to image patches.

    image (B, 3, S, S) -> CNN feature map (B, C, h, w) -> h*w patch tokens (B, P, d) + position
    points (B, N, 4)   -> shared per-point MLP -> per-point features (B, N, F) -> tokens (B, N, d)
    cross-attention: each point token queries the patch tokens (nn.MultiheadAttention); residual
        + LayerNorm gives fused per-point tokens, masked max-pooled into one (B, d) vector
    modality embeddings (pooled before fusion, BatchNorm'd): image = mean over the feature map,
        points = masked max over per-point features, each Linear -> (B, d)
    head: concat(fused, image embedding, point embedding) -> MLP -> one anomaly logit per scene

The forward pass is `encode` (each scene's inputs on their own, in eval mode: the scene's
SceneFeatures) then `fuse_tokens` and `classify`; the shuffled-modality probes move encoded
features between scenes, which in eval mode is the same as moving the inputs.

The modality embeddings are what the collapse probes measure; BatchNorm (no affine part) centres
them across scenes, because every scene of a road dataset shares a large common feature
component that would otherwise make any two scenes' embeddings look alike (cosine near 1) even
when healthy. An encoder that collapsed to one output gives zero embeddings (dim_std 0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tasks.anomaly.config import AnomalyConfig
from tasks.common.image_encoders import ImageEncoder, ResNetEncoder, SmallCNN, build_image_encoder

POINT_FEATURES = 4  # x, y, z, intensity
# BatchNorm running averages of layers trained from scratch follow the batches this fast (the
# default 0.1 lags far behind the features over the few steps of a demo epoch, so evaluation
# would see stale statistics for the first epochs).
FROM_SCRATCH_NORM_MOMENTUM = 0.5


def image_feature_map(encoder: ImageEncoder, images: torch.Tensor) -> torch.Tensor:
    """The encoder's last spatial feature map (B, feature_dim, h, w), before global pooling.

    Runs the encoder's own blocks in its forward order (the encoders here pool inside forward).
    """
    if isinstance(encoder, SmallCNN):
        for block in encoder.blocks:
            images = block(images)
        return images
    if isinstance(encoder, ResNetEncoder):
        features = encoder.stem(images)
        for stage in (encoder.layer1, encoder.layer2, encoder.layer3, encoder.layer4):
            features = stage(features)
        return features
    raise TypeError(f"no feature map for image encoder {type(encoder).__name__}")


def masked_max(features: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over dim 1 of (B, N, F) features where mask (B, N) is True; every row needs one True."""
    return features.masked_fill(~mask.unsqueeze(-1), torch.finfo(features.dtype).min).max(dim=1).values


class PointNetEncoder(nn.Module):
    """Shared per-point MLP (4 -> hidden -> hidden -> feature_dim) and masked max pooling.

    Inputs are standardised with per-channel statistics of the training points (buffers, so an
    exported model carries them). No BatchNorm: padded points must not shift any statistic.
    """

    def __init__(self, hidden_dim: int, feature_dim: int):
        super().__init__()
        self.register_buffer("input_mean", torch.zeros(POINT_FEATURES))
        self.register_buffer("input_std", torch.ones(POINT_FEATURES))
        self.mlp = nn.Sequential(
            nn.Linear(POINT_FEATURES, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, hidden_dim),
            nn.ReLU(),
            nn.Linear(hidden_dim, feature_dim),
        )
        self.feature_dim = feature_dim

    def set_input_statistics(self, points: torch.Tensor, mask: torch.Tensor) -> None:
        """Standardise with the mean and std of the real points (mask True) of (S, N, 4) points."""
        real = points[mask]
        self.input_mean.copy_(real.mean(dim=0))
        self.input_std.copy_(real.std(dim=0).clamp(min=1e-6))

    def forward(self, points: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N, 4) points, (B, N) mask -> (per-point (B, N, F), pooled (B, F))."""
        per_point = self.mlp((points - self.input_mean) / self.input_std)
        return per_point, masked_max(per_point, mask)


@dataclass
class DetectorOutput:
    """logits (B,); image_embedding, point_embedding (B, d): the modalities before fusion."""

    logits: torch.Tensor
    image_embedding: torch.Tensor
    point_embedding: torch.Tensor


@dataclass
class SceneFeatures:
    """Each scene's inputs encoded on their own, before the modalities meet (B scenes).

    patches (B, P, d) and image_embedding (B, d) come from the image only; point_tokens
    (B, N, d), point_mask (B, N) and point_embedding (B, d) from the point cloud only.
    """

    patches: torch.Tensor
    image_embedding: torch.Tensor
    point_tokens: torch.Tensor
    point_mask: torch.Tensor
    point_embedding: torch.Tensor

    @staticmethod
    def cat(parts: list["SceneFeatures"]) -> "SceneFeatures":
        """The parts' scenes one after another."""
        return SceneFeatures(*(torch.cat(column) for column in zip(*(
            (part.patches, part.image_embedding, part.point_tokens, part.point_mask,
             part.point_embedding) for part in parts))))


class CrossModalAnomalyDetector(nn.Module):
    """Image + point cloud -> one anomaly logit per scene (see the module docstring)."""

    def __init__(
        self,
        image_encoder: ImageEncoder,
        point_hidden_dim: int,
        embed_dim: int,
        attention_heads: int,
        dropout: float,
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.point_encoder = PointNetEncoder(point_hidden_dim, 2 * point_hidden_dim)
        image_dim, point_dim = image_encoder.feature_dim, self.point_encoder.feature_dim
        self.patch_tokens = nn.Linear(image_dim, embed_dim)
        self.patch_position = nn.Linear(2, embed_dim)  # from (row, column) in [-1, 1]
        self.point_tokens = nn.Linear(point_dim, embed_dim)
        self.cross_attention = nn.MultiheadAttention(
            embed_dim, attention_heads, dropout=dropout, batch_first=True
        )
        self.fused_norm = nn.LayerNorm(embed_dim)
        # No affine part: a learnt shift would be one more component every scene shares.
        self.image_embedding = nn.Sequential(
            nn.Linear(image_dim, embed_dim), nn.BatchNorm1d(embed_dim, affine=False)
        )
        self.point_embedding = nn.Sequential(
            nn.Linear(point_dim, embed_dim), nn.BatchNorm1d(embed_dim, affine=False)
        )
        self.head = nn.Sequential(
            nn.Linear(3 * embed_dim, embed_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(embed_dim, 1),
        )

    def _patches(self, feature_map: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, h*w, d) patch tokens with their position added."""
        batch, _, height, width = feature_map.shape
        rows = torch.linspace(-1, 1, height, device=feature_map.device)
        columns = torch.linspace(-1, 1, width, device=feature_map.device)
        grid = torch.stack(torch.meshgrid(rows, columns, indexing="ij"), dim=-1).view(-1, 2)
        patches = feature_map.flatten(2).transpose(1, 2)  # (B, h*w, C)
        return self.patch_tokens(patches) + self.patch_position(grid.to(patches.dtype))

    def forward(self, images: torch.Tensor, points: torch.Tensor, mask: torch.Tensor) -> DetectorOutput:
        """images (B, 3, S, S) normalised float, points (B, N, 4), mask (B, N) bool."""
        features = self.encode(images, points, mask)
        return DetectorOutput(self.classify(features), features.image_embedding,
                              features.point_embedding)

    def encode(self, images: torch.Tensor, points: torch.Tensor, mask: torch.Tensor) -> SceneFeatures:
        """Each modality of each scene on its own (inputs as in `forward`)."""
        feature_map = image_feature_map(self.image_encoder, images)
        per_point, pooled_points = self.point_encoder(points, mask)
        return SceneFeatures(
            patches=self._patches(feature_map),
            image_embedding=self.image_embedding(feature_map.mean(dim=(2, 3))),
            point_tokens=self.point_tokens(per_point),
            point_mask=mask,
            point_embedding=self.point_embedding(pooled_points),
        )

    def fuse_tokens(self, point_tokens: torch.Tensor, point_mask: torch.Tensor,
                    patches: torch.Tensor) -> torch.Tensor:
        """(B, d): each scene's point tokens attending to the patches given beside them, pooled."""
        attended, _ = self.cross_attention(point_tokens, patches, patches, need_weights=False)
        return masked_max(self.fused_norm(point_tokens + attended), point_mask)

    def classify(self, features: SceneFeatures, fused: torch.Tensor | None = None) -> torch.Tensor:
        """(B,) logits from the features (`fused`: their fuse_tokens, computed when not given)."""
        if fused is None:
            fused = self.fuse_tokens(features.point_tokens, features.point_mask, features.patches)
        joint = torch.cat([fused, features.image_embedding, features.point_embedding], dim=-1)
        return self.head(joint).squeeze(-1)

    def unfreezable_blocks(self, image_pretrained: bool) -> dict[str, list[nn.Module]]:
        """The pretrained image encoder's blocks, top first; {} when it starts from random init
        (freezing random weights only hides the input, so it always trains)."""
        return {"image": self.image_encoder.blocks_top_first()} if image_pretrained else {}


def build_detector(config: AnomalyConfig) -> CrossModalAnomalyDetector:
    """The seeded-by-caller detector for one trial (call after torch.manual_seed), on CPU."""
    image_encoder = build_image_encoder(config.image_encoder, config.image_weights)
    model = CrossModalAnomalyDetector(
        image_encoder,
        point_hidden_dim=config.point_hidden_dim,
        embed_dim=config.embed_dim,
        attention_heads=config.attention_heads,
        dropout=config.dropout,
    )
    pretrained = image_encoder if config.image_weights is not None else None
    for module in model.modules():
        is_pretrained = pretrained is not None and any(module is m for m in pretrained.modules())
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and not is_pretrained:
            module.momentum = FROM_SCRATCH_NORM_MOMENTUM
    return model
