"""Losses of one logit per sample against 0/1 targets: weighted BCE and focal loss.

Both take raw logits and are computed from log-sigmoids, so they stay finite for any logit, and
both are >= 0 (each term is -weight x log of a probability, with weight >= 0).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def weighted_binary_cross_entropy(
    logits: torch.Tensor, targets: torch.Tensor, pos_weight: float = 1.0
) -> torch.Tensor:
    """Mean over samples of -[pos_weight * y * log p + (1 - y) * log(1 - p)], p = sigmoid(logit).

    logits, targets: (B,) (targets 0/1, any dtype). pos_weight > 1 counts a positive as that
    many negatives (e.g. negatives / positives to balance the classes). Returns a scalar.
    """
    logits = logits.float()
    weight = torch.tensor(float(pos_weight), device=logits.device)
    return F.binary_cross_entropy_with_logits(logits, targets.float(), pos_weight=weight)


def focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, gamma: float = 2.0, alpha: float | None = None
) -> torch.Tensor:
    """Mean over samples of -alpha_t * (1 - p_t)^gamma * log p_t (Lin et al., RetinaNet).

    p_t = p for a positive and 1 - p for a negative, p = sigmoid(logit); alpha_t = alpha for a
    positive and 1 - alpha for a negative, or 1 for both when alpha is None. gamma = 0 with
    alpha None is plain BCE. logits, targets: (B,). Returns a scalar.
    """
    logits, targets = logits.float(), targets.float()
    log_p_t = -F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    # The floor keeps the gradient of x^gamma finite at x = 0 when gamma < 1.
    one_minus_p_t = (1 - log_p_t.exp()).clamp(min=1e-12)
    losses = -(one_minus_p_t**gamma) * log_p_t
    if alpha is not None:
        losses = (alpha * targets + (1 - alpha) * (1 - targets)) * losses
    return losses.mean()
