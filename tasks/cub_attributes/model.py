"""The fusion classifier: image encoder + attribute encoder -> modality attention -> classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from tasks.common.image_encoders import ImageEncoder, build_image_encoder
from tasks.common.modality_attention import ModalityAttentionFusion
from tasks.common.projection import ProjectionHead
from tasks.cub_attributes.config import CubAttributesConfig

MODALITIES = ("image", "attributes")  # the order of the attention weights


@dataclass
class FusionOutput:
    """One forward pass: class logits (B, C), each modality's embedding (B, d), weights (B, 2)."""

    logits: torch.Tensor
    image_embeddings: torch.Tensor
    attribute_embeddings: torch.Tensor
    attention_weights: torch.Tensor


class AttributeEncoder(nn.Module):
    """MLP over the (B, A) attribute vector: Linear -> LayerNorm -> GELU -> Dropout -> Linear."""

    def __init__(self, num_attributes: int, hidden_dim: int, embed_dim: int, dropout: float):
        super().__init__()
        self.layers = nn.Sequential(
            nn.Linear(num_attributes, hidden_dim),
            nn.LayerNorm(hidden_dim),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_dim, embed_dim),
        )

    def forward(self, attributes: torch.Tensor) -> torch.Tensor:
        return self.layers(attributes)


class AttributeFusionClassifier(nn.Module):
    """Classifies a bird from its image and attribute vector.

    Each modality is embedded to (B, d) and layer-normalised (so the attention gate compares
    embeddings on one scale, not their norms); the gate's softmax weights mix them; a linear
    classifier reads the mix. Only the image encoder's blocks are subject to unfreezing.
    """

    def __init__(
        self,
        image_encoder: ImageEncoder,
        num_attributes: int,
        num_classes: int,
        config: CubAttributesConfig,
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.image_head = nn.Sequential(
            ProjectionHead(image_encoder.feature_dim, config.embed_dim, config.dropout),
            nn.LayerNorm(config.embed_dim),
        )
        self.attribute_encoder = nn.Sequential(
            AttributeEncoder(num_attributes, config.attribute_hidden_dim, config.embed_dim, config.dropout),
            nn.LayerNorm(config.embed_dim),
        )
        self.fusion = ModalityAttentionFusion(
            len(MODALITIES), config.embed_dim, config.gate_hidden_dim, config.modality_dropout
        )
        self.classifier = nn.Sequential(nn.Dropout(config.dropout), nn.Linear(config.embed_dim, num_classes))

    def embed_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised float images -> (B, d) image embeddings."""
        return self.image_head(self.image_encoder(images))

    def embed_attributes(self, attributes: torch.Tensor) -> torch.Tensor:
        """(B, A) attribute inputs -> (B, d) attribute embeddings."""
        return self.attribute_encoder(attributes)

    def classify(
        self, image_embeddings: torch.Tensor, attribute_embeddings: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Fuse the two embeddings; returns (logits (B, C), attention weights (B, 2))."""
        fused, weights = self.fusion([image_embeddings, attribute_embeddings])
        return self.classifier(fused), weights

    def forward(self, images: torch.Tensor, attributes: torch.Tensor) -> FusionOutput:
        image_embeddings = self.embed_images(images)
        attribute_embeddings = self.embed_attributes(attributes)
        logits, weights = self.classify(image_embeddings, attribute_embeddings)
        return FusionOutput(logits, image_embeddings, attribute_embeddings, weights)

    def unfreezable_blocks(self, image_pretrained: bool) -> dict[str, list[nn.Module]]:
        """The pretrained backbone's blocks, top first; {} for a backbone from random init.

        Handing the blocks over is what puts them in the optimiser's scaled parameter group
        (`learning_rate * unfreeze_lr_scale`, the backbone learning-rate scale). A random-init
        backbone is not handed over: freezing random weights only hides the image.
        """
        return {"image": self.image_encoder.blocks_top_first()} if image_pretrained else {}


def build_classifier(
    config: CubAttributesConfig, num_attributes: int, num_classes: int
) -> AttributeFusionClassifier:
    """The model for one trial, on CPU (call after seeding torch). Bad image_weights -> ValueError."""
    image_encoder = build_image_encoder(config.image_encoder, config.image_weights)
    return AttributeFusionClassifier(image_encoder, num_attributes, num_classes, config)
