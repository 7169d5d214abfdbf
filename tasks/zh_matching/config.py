"""Hyperparameters of the zh_matching task; defaults are sized for the CPU demo."""

from __future__ import annotations

from typing import Literal, Optional

from pydantic import Field

from tasks.common.contrastive_config import ContrastiveConfig

# SCAN and SGRAF cut the dev split to its first 5000 captions (1000 images) for validation.
VAL_MAX_IMAGES = 1000


class ZhMatchingConfig(ContrastiveConfig):
    """The generic trial-loop fields plus the SCAN-style matcher and its loss.

    The region features are precomputed, so there is no pretrained encoder to unfreeze: the
    inherited `unfreeze_*` fields have no effect on this task.
    """

    batch_size: int = Field(32, ge=2, description="training batch size (= in-batch negatives + 1)")

    embed_dim: int = Field(64, ge=2, description="joint space of regions and words (SCAN: 1024)")
    word_dim: int = Field(64, ge=2, description="word embedding size (SCAN: 300)")
    gru_layers: int = Field(1, ge=1, description="layers of the bidirectional caption GRU")
    min_word_count: int = Field(
        1, ge=1, description="training-caption count a word needs to enter the vocabulary "
        "(unused when the data has SCAN's vocabulary json)"
    )
    max_caption_tokens: int = Field(
        40, ge=3, description="captions are cut to this many tokens, <start> and <end> included"
    )
    val_max_images: Optional[int] = Field(
        VAL_MAX_IMAGES,
        ge=1,
        description="validate on the first this many dev images (SCAN/SGRAF: the first 5000 "
        "dev captions = 1000 images); null validates on the whole dev split",
    )

    similarity: Literal["scan_t2i", "global"] = Field(
        "scan_t2i",
        description="scan_t2i: each word attends over the regions (SCAN text-to-image); "
        "global: cosine of mean-pooled regions and mean-pooled words",
    )
    attention_lambda: float = Field(
        9.0, gt=0, description="inverse softmax temperature of the word-to-region attention"
    )
    aggregation: Literal["mean", "logsumexp"] = Field(
        "mean", description="how scan_t2i pools its per-word cosines into one score"
    )
    lse_lambda: float = Field(
        6.0, gt=0, description="sharpness of the logsumexp pooling (large -> max over words)"
    )

    loss: Literal["vse_hinge", "infonce"] = Field(
        "vse_hinge", description="VSE++ margin hinge, or symmetric InfoNCE over the similarities"
    )
    margin: float = Field(0.2, ge=0, description="cosine margin of the VSE++ hinge")
    max_violation: bool = Field(
        True, description="VSE++ hinge on the hardest negative only (else on all negatives)"
    )
    temperature: float = Field(0.05, gt=0, description="softmax temperature of InfoNCE")

