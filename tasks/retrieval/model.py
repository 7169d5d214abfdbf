"""The dual encoder: image encoder + head and text encoder + head into one embedding space."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedTokenizerBase

from tasks.common.image_encoders import ImageEncoder, build_image_encoder
from tasks.common.projection import ProjectionHead
from tasks.common.text_encoders import TextEncoder, build_scratch_bert, load_local_text_model
from tasks.common.text_tokenizer import load_local_tokenizer, train_wordpiece_tokenizer
from tasks.retrieval.config import RetrievalConfig


class DualEncoder(nn.Module):
    """Maps images and captions to L2-normalised (B, embed_dim) embeddings.

    Only the encoders' blocks are subject to unfreezing; the projection heads always train.
    """

    def __init__(
        self, image_encoder: ImageEncoder, text_encoder: TextEncoder, embed_dim: int, dropout: float
    ):
        super().__init__()
        self.image_encoder = image_encoder
        self.text_encoder = text_encoder
        self.image_head = ProjectionHead(image_encoder.feature_dim, embed_dim, dropout)
        self.text_head = ProjectionHead(text_encoder.feature_dim, embed_dim, dropout)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, S, S) normalised float images -> (B, embed_dim) unit vectors."""
        return F.normalize(self.image_head(self.image_encoder(images)), dim=-1)

    def encode_texts(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, L) token ids and mask -> (B, embed_dim) unit vectors."""
        return F.normalize(self.text_head(self.text_encoder(input_ids, attention_mask)), dim=-1)

    def unfreezable_blocks(self, image_pretrained: bool, text_pretrained: bool) -> dict[str, list[nn.Module]]:
        """The pretrained encoders' blocks, top (nearest the head) first.

        An encoder built from random init is left out: freezing random weights only hides the
        input (a frozen random CNN maps every image to nearly the same vector), so it always trains.
        """
        blocks = {}
        if image_pretrained:
            blocks["image"] = self.image_encoder.blocks_top_first()
        if text_pretrained:
            blocks["text"] = self.text_encoder.blocks_top_first()
        return blocks


def build_dual_encoder(
    config: RetrievalConfig, train_captions: list[str]
) -> tuple[DualEncoder, PreTrainedTokenizerBase]:
    """The model and its caption tokeniser for one trial (call after seeding torch).

    With `text_encoder` unset, a WordPiece tokeniser is trained on
    `train_captions` and a small BERT is built from scratch; otherwise both load from the local
    directory. Returns (model on CPU, tokenizer).
    """
    if config.text_encoder is None:
        tokenizer = train_wordpiece_tokenizer(train_captions, config.text_vocab_size)
        transformer = build_scratch_bert(
            vocab_size=len(tokenizer),
            hidden_size=config.text_hidden_size,
            num_layers=config.text_layers,
            num_heads=config.text_heads,
            max_tokens=config.max_caption_tokens,
            pad_token_id=tokenizer.pad_token_id,
        )
    else:
        tokenizer = load_local_tokenizer(config.text_encoder)
        transformer = load_local_text_model(config.text_encoder)
    image_encoder = build_image_encoder(config.image_encoder, config.image_weights)
    text_encoder = TextEncoder(transformer, config.pooling)
    model = DualEncoder(image_encoder, text_encoder, config.embed_dim, config.projection_dropout)
    return model, tokenizer
