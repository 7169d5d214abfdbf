"""Text encoders: a BERT-family transformer plus token pooling, (B, L) ids -> (B, feature_dim).

The transformer is either loaded from a local directory or built small from scratch. Its blocks
are listed top first for progressive unfreezing: [last layer, ..., first layer, embeddings].
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import torch
from torch import nn
from transformers import AutoModel, BertConfig, BertModel
from transformers.utils import logging as hf_logging

Pooling = Literal["cls", "mean", "max", "mean_max"]


def pool_tokens(
    hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: Pooling
) -> torch.Tensor:
    """Pool (B, L, H) token states into (B, H), or (B, 2H) for mean_max.

    cls: the first token; mean / max: over non-padding tokens (attention_mask == 1).
    """
    if pooling == "cls":
        return hidden[:, 0]
    mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
    mean = (hidden * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)
    if pooling == "mean":
        return mean
    maximum = hidden.masked_fill(mask == 0, torch.finfo(hidden.dtype).min).max(dim=1).values
    if pooling == "max":
        return maximum
    if pooling == "mean_max":
        return torch.cat([mean, maximum], dim=-1)
    raise ValueError(f"unknown pooling {pooling!r}; use cls, mean, max or mean_max")


def build_scratch_bert(
    vocab_size: int,
    hidden_size: int,
    num_layers: int,
    num_heads: int,
    max_tokens: int,
    pad_token_id: int,
) -> BertModel:
    """A small randomly initialised BERT (intermediate size 2 x hidden), without pooler."""
    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        intermediate_size=2 * hidden_size,
        max_position_embeddings=max_tokens,
        pad_token_id=pad_token_id,
    )
    return BertModel(config, add_pooling_layer=False)


def load_local_text_model(directory: str | Path) -> nn.Module:
    """A BERT-family model from a local directory (never downloads), its pooler dropped."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ValueError(
            f"text_encoder directory {directory} does not exist; give a local model directory or leave it unset"
        )
    # Quiet: a checkpoint saved with its pretraining head (bert-base-uncased, the demo's MLM BERT)
    # makes transformers print a progress bar and a table of head keys AutoModel leaves out, on
    # every load (in the sweep driver's preflight too, where a user reads one-line messages).
    verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        model = AutoModel.from_pretrained(str(directory), local_files_only=True)
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    if getattr(model, "pooler", None) is not None:
        model.pooler = None  # unused: we pool token states ourselves
    return model


class TextEncoder(nn.Module):
    """A BERT-family transformer followed by token pooling."""

    def __init__(self, transformer: nn.Module, pooling: Pooling):
        super().__init__()
        if not (
            hasattr(transformer, "embeddings")
            and hasattr(getattr(transformer, "encoder", None), "layer")
        ):
            raise ValueError(
                f"text model {type(transformer).__name__} is not BERT-like (needs .embeddings and .encoder.layer)"
            )
        self.transformer = transformer
        self.pooling = pooling
        hidden_size = transformer.config.hidden_size
        self.feature_dim = 2 * hidden_size if pooling == "mean_max" else hidden_size

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.transformer(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state
        return pool_tokens(hidden, attention_mask, self.pooling)

    def blocks_top_first(self) -> list[nn.Module]:
        return [*reversed(self.transformer.encoder.layer), self.transformer.embeddings]
