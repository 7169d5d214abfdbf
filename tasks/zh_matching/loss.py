"""The matching loss over a batch's (B, B) similarity matrix (pair i on the diagonal).

The main term is VSE++'s margin hinge or symmetric InfoNCE, both from tasks/common/contrastive.py
written on a similarity matrix (SCAN scores are not a dot product of two embeddings); the
optional hard-negative hinge is the same extra term as in the retrieval task.
"""

from __future__ import annotations

import torch

from tasks.common.contrastive import (
    hard_negative_count,
    hinge_from_similarity,
    infonce_from_similarity,
)
from tasks.zh_matching.config import ZhMatchingConfig


def vse_hinge(similarity: torch.Tensor, margin: float, max_violation: bool) -> torch.Tensor:
    """VSE++ hinge: relu(margin - s(i, i) + s(i, j)) over negatives j of each image (rows) and
    each caption (columns); only the hardest negative with max_violation, else all of them.

    Averaged over the negatives used, the anchors and the two directions (VSE++ sums them; the
    mean keeps the loss's scale independent of the batch size). Returns a scalar >= 0.
    """
    batch_size = similarity.shape[0]
    return hinge_from_similarity(similarity, 1 if max_violation else batch_size - 1, margin)


def matching_loss(similarity: torch.Tensor, config: ZhMatchingConfig) -> dict[str, torch.Tensor]:
    """The configured loss of one batch: {"loss", the main term by name, "hard_negative_hinge"}.

    similarity: (B, B) scores, image i with caption j; loss = main + weight * hard-negative
    hinge (the hinge is 0, not computed, when its ratio or weight is 0). Every term is >= 0.
    """
    similarity = similarity.float()
    if config.loss == "vse_hinge":
        name, main = "vse_hinge", vse_hinge(similarity, config.margin, config.max_violation)
    elif config.loss == "infonce":
        name, main = "infonce", infonce_from_similarity(similarity, config.temperature)
    else:
        raise ValueError(f"unknown loss {config.loss!r}; use vse_hinge or infonce")
    if config.hard_negative_ratio > 0 and config.hard_negative_weight > 0:
        negatives = hard_negative_count(similarity.shape[0], config.hard_negative_ratio)
        hinge = hinge_from_similarity(similarity, negatives, config.hard_negative_margin)
    else:
        hinge = main.new_zeros(())
    return {
        "loss": main + config.hard_negative_weight * hinge,
        name: main,
        "hard_negative_hinge": hinge,
    }
