"""Hyperparameters of the cub_attributes task; defaults are sized for the CPU demo.

Layer-wise learning rates: the image backbone's learning-rate scale IS the generic
`unfreeze_lr_scale` (no duplicate field). When `image_weights` is given, the backbone's blocks
are handed to the trial loop as unfreezable blocks, and the loop's optimiser puts them in their
own parameter group at `learning_rate * unfreeze_lr_scale` while the attribute encoder, the
fusion gate and the classifier train at `learning_rate` (orchestrator/unfreezing.param_groups);
the `unfreeze_stages` family can additionally freeze them for the first epochs. A small CNN from
random init is not handed over (freezing random weights only hides the image), so it trains at
the base rate and `unfreeze_*` has no effect on it; the demo's space loads the demo data's
pretrained small CNN (pretrained/image_encoder.pt), so there they act.
"""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from tasks.base import TrainingConfig


class CubAttributesConfig(TrainingConfig):
    """The generic trial-loop fields plus the image/attribute encoders, fusion and loss."""

    batch_size: int = Field(32, ge=2, description="training batch size")

    image_encoder: Literal["small_cnn", "resnet18", "resnet50", "resnet101"] = Field(
        "small_cnn", description="image backbone; small_cnn for the CPU demo, resnet50 for CUB"
    )
    image_weights: Optional[str] = Field(
        None,
        description="local torchvision state_dict file for the backbone (e.g. ResNet50 ImageNet "
        "weights); random init if unset. A relative path is read from the data directory (the "
        "demo data carries pretrained/image_encoder.pt). Setting it makes `unfreeze_lr_scale` "
        "the backbone's learning-rate scale",
    )
    image_size: int = Field(
        32, ge=16, description="square input side in pixels (32 demo, 224 typical for ResNet50)"
    )

    attribute_certainty: bool = Field(
        True,
        description="weight each attribute by its annotator certainty (not visible 0, guessing "
        "0.5, probably 0.75, definitely 1) instead of taking is_present at face value",
    )
    attribute_min_certainty: int = Field(
        1,
        ge=1,
        le=4,
        description="an attribute counts as present only when annotated present with at least this "
        "certainty id (1 not visible, 2 guessing, 3 probably, 4 definitely); annotations below it "
        "carry no evidence. 1 trusts every annotation",
    )
    attribute_hidden_dim: int = Field(64, ge=4, description="hidden width of the attribute MLP")

    embed_dim: int = Field(64, ge=2, description="dimension of each modality embedding")
    gate_hidden_dim: int = Field(32, ge=2, description="hidden width of the modality-attention gate")
    dropout: float = Field(0.1, ge=0, lt=1, description="dropout in the heads and before the classifier")
    modality_dropout: float = Field(
        0.3,
        ge=0,
        lt=1,
        description="probability that a training sample has one modality (at random) masked out "
        "of the attention, so neither encoder is left untrained",
    )
    image_augmentation: bool = Field(
        True, description="mirror and shift training images (up to 1/16 of their side)"
    )

    label_smoothing: float = Field(
        0.1, ge=0, lt=1, description="label smoothing of the classification cross-entropy"
    )

    val_fraction: float = Field(
        0.25,
        gt=0,
        lt=1,
        description="fraction of each class's official training images held out for validation",
    )
    val_split_seed: int = Field(
        0, description="seed of the validation split; keep it fixed across a sweep so trials compare"
    )
