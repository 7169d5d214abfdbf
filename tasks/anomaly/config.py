"""Hyperparameters of the anomaly task; defaults are sized for the CPU demo."""

from __future__ import annotations

from typing import Literal, Optional, Union

from pydantic import Field, model_validator

from tasks.base import TrainingConfig


class AnomalyConfig(TrainingConfig):
    """The generic trial-loop fields plus data sampling, the two encoders, fusion and the loss."""

    learning_rate: float = Field(2e-3, gt=0, description="peak AdamW learning rate")
    batch_size: int = Field(32, ge=2, description="training batch size (scenes)")

    min_anomalous_points: int = Field(
        5, ge=1, description="a scene is anomalous iff at least this many points are labelled 1"
    )
    num_points: int = Field(
        512, ge=8, description="points per scene after seeded subsampling / zero padding"
    )

    image_encoder: Literal["small_cnn", "resnet18", "resnet50", "resnet101"] = Field(
        "small_cnn", description="image backbone; small_cnn for the CPU demo"
    )
    image_weights: Optional[str] = Field(
        None,
        description="local state_dict file for the image backbone (torchvision layout for ResNets); "
        "random init if unset. A relative path is read from the data directory (the demo data "
        "carries pretrained/image_encoder.pt)",
    )
    image_size: int = Field(
        32, ge=16, description="square input side in pixels (32 demo, 224 typical for ResNet)"
    )

    point_hidden_dim: int = Field(64, ge=4, description="width of the per-point MLP's hidden layers")
    embed_dim: int = Field(
        64, ge=4, description="width of point tokens, image patch tokens and modality embeddings"
    )
    attention_heads: int = Field(4, ge=1, description="heads of the point-to-image cross-attention")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the attention and the head")

    loss: Literal["bce", "focal"] = Field("bce", description="binary cross-entropy or focal loss")
    pos_weight: Union[Literal["auto"], float] = Field(
        "auto",
        description="BCE weight of anomalous scenes; auto = negatives / positives of the train split",
    )
    focal_gamma: float = Field(2.0, ge=0, description="focal loss focusing exponent (0 = BCE)")
    focal_alpha: Optional[float] = Field(
        None,
        ge=0,
        le=1,
        description="focal loss weight of anomalous scenes (1 - alpha for normal ones); unset = 1 both",
    )

    @model_validator(mode="after")
    def _check(self) -> "AnomalyConfig":
        if self.embed_dim % self.attention_heads:
            raise ValueError(
                f"embed_dim {self.embed_dim} must be divisible by attention_heads {self.attention_heads}"
            )
        if not isinstance(self.pos_weight, str) and self.pos_weight <= 0:
            raise ValueError(f"pos_weight must be 'auto' or a positive number, got {self.pos_weight}")
        return self
