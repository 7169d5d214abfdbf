"""Metrics of multi-class logits against integer labels: top-k accuracy and chance levels.

Pure functions on tensors; shared by every task that classifies into many classes. The
predicted class of a row is the argmax over its CLASSES (the last dimension), never over the
batch: logits are (N samples, C classes).
"""

from __future__ import annotations

import math

import torch

from tasks.common.classification_metrics import accuracy_with_majority_rate


def top_k_accuracy(logits: torch.Tensor, labels: torch.Tensor, k: int) -> float:
    """Fraction of rows whose label is among the k highest logits of that row.

    logits: (N, C) scores; labels: (N,) class ids in [0, C). k is capped at C. Ties count
    against the model (the label's rank is 1 + the number of other classes scoring at least as
    high), so constant logits score 0, and any non-finite logit gives NaN: a broken model never
    looks good. Returns NaN for N == 0.
    """
    logits, labels = logits.detach().float().cpu(), labels.detach().long().cpu()
    if logits.ndim != 2 or labels.shape != logits.shape[:1]:
        raise ValueError(
            f"logits must be (N, C) and labels (N,); got {tuple(logits.shape)} and {tuple(labels.shape)}"
        )
    if len(labels) == 0 or not torch.isfinite(logits).all():
        return math.nan
    k = min(k, logits.shape[1])
    label_scores = logits.gather(1, labels[:, None])
    # Rank of the label = 1 + number of OTHER classes scoring at least as high (pessimistic ties).
    others_at_least_as_high = (logits >= label_scores).sum(dim=1) - 1
    return float((others_at_least_as_high < k).double().mean())


def multiclass_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict[str, float]:
    """Accuracy, top-5 accuracy and the majority-class rate of one split, with chance levels.

    logits: (N, num_classes); labels: (N,). Returns accuracy (argmax over classes == label),
    top5_accuracy, majority_rate (accuracy of always answering the most frequent label), and
    chance/accuracy = 1 / num_classes, chance/top5_accuracy = min(5, num_classes) / num_classes
    (the accuracy of uniform random guessing). accuracy counts ties against the model.
    """
    if logits.shape[-1] != num_classes:
        raise ValueError(f"logits have {logits.shape[-1]} classes, expected {num_classes}")
    majority_rate = accuracy_with_majority_rate(labels, labels)["majority_rate"]
    return {
        "accuracy": top_k_accuracy(logits, labels, 1),
        "top5_accuracy": top_k_accuracy(logits, labels, 5),
        "majority_rate": majority_rate,
        "chance/accuracy": 1.0 / num_classes,
        "chance/top5_accuracy": min(5, num_classes) / num_classes,
    }
