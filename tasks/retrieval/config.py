"""Hyperparameters of the retrieval task; defaults are sized for the CPU demo."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field, model_validator

from tasks.common.contrastive_config import ContrastiveConfig


class RetrievalConfig(ContrastiveConfig):
    """The generic trial-loop fields plus the dual encoder, tokeniser and loss settings."""

    batch_size: int = Field(64, ge=2, description="training batch size (= in-batch negatives + 1)")

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

    text_encoder: Optional[str] = Field(
        None,
        description="local directory with a BERT-family model + tokenizer; if unset, a small BERT "
        "is built from scratch with a WordPiece tokeniser trained on the training captions. A "
        "relative path is read from the data directory (the demo data carries "
        "pretrained/text_encoder)",
    )
    text_hidden_size: int = Field(64, ge=8, description="hidden size of the from-scratch BERT")
    text_layers: int = Field(2, ge=1, description="transformer layers of the from-scratch BERT")
    text_heads: int = Field(2, ge=1, description="attention heads of the from-scratch BERT")
    text_vocab_size: int = Field(
        8000, ge=100, description="WordPiece vocabulary size (upper bound) when trained"
    )
    max_caption_tokens: int = Field(
        24, ge=4, description="captions are padded/truncated to this many tokens"
    )
    pooling: Literal["cls", "mean", "max", "mean_max"] = Field(
        "mean", description="how token states become one caption vector"
    )

    embed_dim: int = Field(64, ge=2, description="shared embedding dimension")
    projection_dropout: float = Field(
        0.1, ge=0, lt=1, description="dropout inside both projection heads"
    )

    temperature: float = Field(0.07, gt=0, description="softmax temperature of InfoNCE")
    label_smoothing: float = Field(
        0.0, ge=0, lt=1, description="label smoothing of both InfoNCE cross-entropies"
    )

    @model_validator(mode="after")
    def _heads_divide_hidden_size(self) -> "RetrievalConfig":
        if self.text_encoder is None and self.text_hidden_size % self.text_heads:
            raise ValueError(
                f"text_hidden_size {self.text_hidden_size} must be divisible by text_heads {self.text_heads}"
            )
        return self
