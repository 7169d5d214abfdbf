"""The multiview loss: symmetric InfoNCE between the two views, plus named optional terms.

The standard form comes first (tasks/common/contrastive.py: cross-entropy over the in-batch
view_a x view_b similarity matrix, pair i on the diagonal, optional hard-negative hinge); the
view-consistency term is added as its own, separately reported term. Every term is >= 0, so the
total never goes below 0.
"""

from __future__ import annotations

import torch

from tasks.common.contrastive import contrastive_loss


def view_consistency(view_a: torch.Tensor, view_b: torch.Tensor) -> torch.Tensor:
    """Mean squared Euclidean distance between the two views of each positive pair.

    view_a, view_b: (B, d) L2-normalised; row i of each shows the same object. For unit vectors
    |a - b|^2 = 2 - 2 cos(a, b), so the result lies in [0, 4] (0 when the views coincide).
    """
    return (view_a - view_b).pow(2).sum(dim=-1).mean()


def multiview_loss(
    view_a: torch.Tensor,
    view_b: torch.Tensor,
    temperature: float,
    consistency_weight: float = 0.0,
    hard_negative_ratio: float = 0.0,
    hard_negative_weight: float = 0.0,
    hard_negative_margin: float = 0.2,
) -> dict[str, torch.Tensor]:
    """InfoNCE + consistency_weight x consistency + hard_negative_weight x hinge, over a batch.

    view_a, view_b: (B, d) L2-normalised embeddings of B positive pairs (cast to float32).
    Returns scalar tensors {"loss", "infonce", "consistency", "hard_negative_hinge"}; the
    consistency is always reported (it is a useful signal at weight 0 too) but only enters the
    loss when its weight is positive.
    """
    view_a, view_b = view_a.float(), view_b.float()
    losses = contrastive_loss(
        view_a,
        view_b,
        temperature=temperature,
        hard_negative_ratio=hard_negative_ratio,
        hard_negative_weight=hard_negative_weight,
        hard_negative_margin=hard_negative_margin,
    )
    consistency = view_consistency(view_a, view_b)
    total = losses["loss"]
    if consistency_weight > 0:
        total = total + consistency_weight * consistency
    return {**losses, "loss": total, "consistency": consistency}
