"""Contrastive losses over a batch of paired embeddings, written open_clip `ClipLoss` style.

The standard symmetric InfoNCE comes first, as cross-entropy over the image-text similarity
matrix with the matching pair on the diagonal; our extras (label smoothing, a hard-negative
hinge) are separate, named terms so a reader sees exactly what is added to the standard form.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def symmetric_infonce(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    temperature: float,
    label_smoothing: float = 0.0,
) -> torch.Tensor:
    """Symmetric InfoNCE (CLIP loss) of a batch whose i-th image and i-th text match.

    image_embeddings, text_embeddings: (B, d), already L2-normalised.
    Returns a scalar: (CE(logits, arange(B)) + CE(logits.T, arange(B))) / 2 with
    logits = I @ T.T / temperature; >= 0 always.
    """
    return infonce_from_similarity(
        image_embeddings @ text_embeddings.T, temperature, label_smoothing
    )


def infonce_from_similarity(
    similarity: torch.Tensor, temperature: float, label_smoothing: float = 0.0
) -> torch.Tensor:
    """Symmetric InfoNCE of a (B, B) image-text similarity matrix whose diagonal holds the pairs.

    For models whose similarity is not a dot product of two embeddings (e.g. cross-attention).
    Returns a scalar: (CE(S / t, arange(B)) + CE(S.T / t, arange(B))) / 2; >= 0 always.
    """
    logits_per_image = similarity / temperature
    labels = torch.arange(logits_per_image.shape[0], device=logits_per_image.device)
    image_to_text = F.cross_entropy(logits_per_image, labels, label_smoothing=label_smoothing)
    text_to_image = F.cross_entropy(logits_per_image.T, labels, label_smoothing=label_smoothing)
    return (image_to_text + text_to_image) / 2


def hard_negative_count(batch_size: int, hard_negative_ratio: float) -> int:
    """How many negatives per anchor the hinge uses: ceil(ratio * (B - 1)), at most B - 1."""
    return min(batch_size - 1, math.ceil(hard_negative_ratio * (batch_size - 1)))


def hard_negative_hinge(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    hard_negative_ratio: float,
    margin: float,
) -> torch.Tensor:
    """Margin hinge on each anchor's hardest negatives, averaged over both directions.

    image_embeddings, text_embeddings: (B, d), L2-normalised; pair i is (image i, text i).
    For each image (row of S = I @ T.T) and each text (column), the k = ceil(ratio * (B - 1))
    most similar non-matching items are taken, and the term is the mean over them of
    relu(margin - s_positive + s_negative). Returns a scalar >= 0 (0 when k == 0).
    """
    similarity = image_embeddings @ text_embeddings.T
    k = hard_negative_count(similarity.shape[0], hard_negative_ratio)
    return hinge_from_similarity(similarity, k, margin)


def hinge_from_similarity(similarity: torch.Tensor, negatives: int, margin: float) -> torch.Tensor:
    """Margin hinge of a (B, B) similarity matrix (pairs on the diagonal) on hardest negatives.

    For each image (row) and each text (column), its `negatives` most similar non-matching items
    are taken (1: VSE++'s hardest negative; B - 1: every negative), and the term is the mean
    over them of relu(margin - s_positive + s_negative), averaged over both directions.
    Returns a scalar >= 0 (0 when negatives == 0).
    """
    batch_size = similarity.shape[0]
    k = min(negatives, batch_size - 1)
    if k <= 0:
        return similarity.new_zeros(())
    positives = similarity.diagonal()
    # The diagonal is pushed to -inf so it can never be picked as a negative.
    diagonal = torch.eye(batch_size, dtype=torch.bool, device=similarity.device)
    negatives_only = similarity.masked_fill(diagonal, -math.inf)
    hardest_per_image = negatives_only.topk(k, dim=1).values  # (B, k)
    hardest_per_text = negatives_only.T.topk(k, dim=1).values  # (B, k)
    image_to_text = F.relu(margin - positives[:, None] + hardest_per_image).mean()
    text_to_image = F.relu(margin - positives[:, None] + hardest_per_text).mean()
    return (image_to_text + text_to_image) / 2


def contrastive_loss(
    image_embeddings: torch.Tensor,
    text_embeddings: torch.Tensor,
    temperature: float,
    label_smoothing: float = 0.0,
    hard_negative_ratio: float = 0.0,
    hard_negative_weight: float = 0.0,
    hard_negative_margin: float = 0.2,
) -> dict[str, torch.Tensor]:
    """InfoNCE plus an optional weighted hard-negative hinge.

    Embeddings are (B, d) and L2-normalised; they are cast to float32 so the loss is exact under
    mixed precision. Returns scalar tensors {"loss": total, "infonce", "hard_negative_hinge"}
    with total = infonce + hard_negative_weight * hinge; the hinge is not computed (reported as
    0) when the ratio or the weight is 0.
    """
    image_embeddings = image_embeddings.float()
    text_embeddings = text_embeddings.float()
    infonce = symmetric_infonce(image_embeddings, text_embeddings, temperature, label_smoothing)
    if hard_negative_ratio > 0 and hard_negative_weight > 0:
        hinge = hard_negative_hinge(
            image_embeddings, text_embeddings, hard_negative_ratio, hard_negative_margin
        )
    else:
        hinge = infonce.new_zeros(())
    return {
        "loss": infonce + hard_negative_weight * hinge,
        "infonce": infonce,
        "hard_negative_hinge": hinge,
    }
