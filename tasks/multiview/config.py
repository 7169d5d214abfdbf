"""Hyperparameters of the multiview task; defaults are sized for the CPU demo."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from tasks.common.contrastive_config import ContrastiveConfig


class MultiviewConfig(ContrastiveConfig):
    """The generic trial-loop fields plus the shared backbone, projection head and loss."""

    batch_size: int = Field(
        32, ge=2, description="positive pairs per training batch (= in-batch negatives + 1)"
    )

    backbone: Literal["small_cnn", "small_vit", "resnet18", "resnet50"] = Field(
        "small_cnn", description="image backbone shared by both views; small_cnn for the CPU demo"
    )
    backbone_weights: Optional[str] = Field(
        None,
        description="local state_dict file for the backbone (torchvision layout for ResNets); "
        "random init if unset. Only a backbone with weights is handed to the unfreezing schedule. "
        "A relative path is read from the data directory (the demo data carries "
        "pretrained/image_encoder.pt)",
    )
    image_size: int = Field(
        32, ge=16, description="square input side in pixels (32 demo, 224 typical for ResNet)"
    )

    vit_patch_size: int = Field(4, ge=1, description="small_vit: square patch side in pixels")
    vit_dim: int = Field(64, ge=8, description="small_vit: token width")
    vit_heads: int = Field(4, ge=1, description="small_vit: attention heads per layer")
    vit_layers: int = Field(2, ge=1, description="small_vit: transformer encoder layers")

    embed_dim: int = Field(64, ge=2, description="embedding dimension of the projection head")
    projection_dropout: float = Field(
        0.1, ge=0, lt=1, description="dropout inside the projection head"
    )

    temperature: float = Field(0.1, gt=0, description="softmax temperature of InfoNCE")
    consistency_weight: float = Field(
        0.0,
        ge=0,
        description="weight of the view-consistency term: mean squared distance between the "
        "two views' normalised embeddings of each positive pair",
    )

    # How the task turns a dataset of objects and their views into pairs (tasks/multiview/pairs.py)
    # and splits (tasks/multiview/splits.py). A manifest of pairs is used as written instead.
    pair_seed: int = Field(
        0,
        description="seed of which views pair up and which objects serve as negatives; keep it "
        "fixed across a sweep so that every trial is scored on the same val and test pairs",
    )
    train_pairs_per_object: int = Field(
        3,
        ge=1,
        description="positive view pairs drawn per training object; an epoch trains on one of "
        "them per object, the next epoch on the next",
    )
    eval_pairs_per_object: int = Field(
        2,
        ge=1,
        description="positive view pairs per val/test object, each with one negative pair (a "
        "view of the object against a view of another object)",
    )
    same_class_negative_share: float = Field(
        0.25,
        ge=0,
        le=1,
        description="training: share of each pair's in-batch negatives drawn from its own class "
        "(hard negatives), as far as class sizes allow; 0 = batches drawn at random",
    )
    eval_same_class_negative_share: float = Field(
        0.5,
        ge=0,
        le=1,
        description="val/test: share of negative pairs whose two objects share a class; keep it "
        "fixed across a sweep so that trials are compared on the same pairs",
    )
    max_objects_per_split: Optional[int] = Field(
        None,
        ge=2,
        description="pair at most this many objects per split (a fixed subset, chosen by a hash "
        "of the object key), to bound memory and evaluation time on datasets of 10^5 objects "
        "(CO3D, MVImgNet); None uses every object",
    )
    val_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="share of each class's training objects carved out as val when the dataset "
        "has no val split of its own",
    )
    test_fraction: float = Field(
        0.2,
        ge=0,
        lt=1,
        description="share of each class's objects carved out as test when the dataset has no "
        "split of its own (MVImgNet; CO3D without set lists)",
    )

    @model_validator(mode="after")
    def _vit_shape_fits(self) -> "MultiviewConfig":
        if self.backbone == "small_vit":
            if self.image_size % self.vit_patch_size:
                raise ValueError(
                    f"image_size {self.image_size} must be divisible by vit_patch_size {self.vit_patch_size}"
                )
            if self.vit_dim % self.vit_heads:
                raise ValueError(f"vit_dim {self.vit_dim} must be divisible by vit_heads {self.vit_heads}")
        return self
