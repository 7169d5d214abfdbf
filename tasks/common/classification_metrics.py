"""Metrics of scores against binary labels, and accuracy beside the majority-class rate.

Pure functions on 1-D tensors; shared by every task that scores pairs or detects anomalies.
Degenerate inputs (one class only) return NaN rather than a flattering number, so the
non-finite health guard names the problem.
"""

from __future__ import annotations

import math

import torch


def _check(scores: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    scores = scores.detach().double().flatten().cpu()
    labels = labels.detach().flatten().cpu().bool()
    if scores.shape != labels.shape:
        raise ValueError(f"scores {tuple(scores.shape)} and labels {tuple(labels.shape)} differ in size")
    return scores, labels


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve: P(score of a random positive > a random negative), ties 1/2."""
    scores, labels = _check(scores, labels)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    order = scores.argsort()
    sorted_scores = scores[order]
    ranks = torch.empty_like(scores)
    ranks[order] = torch.arange(1, len(scores) + 1, dtype=torch.float64)
    # average ranks over ties (Mann-Whitney U with tie correction)
    unique, inverse, counts = torch.unique(sorted_scores, return_inverse=True, return_counts=True)
    rank_sums = torch.zeros(len(unique), dtype=torch.float64).index_add_(
        0, inverse, torch.arange(1, len(scores) + 1, dtype=torch.float64))
    ranks[order] = (rank_sums / counts)[inverse]
    u_statistic = ranks[labels].sum() - positives * (positives + 1) / 2
    return float(u_statistic / (positives * negatives))


def average_precision(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the precision-recall curve as average precision (sklearn's definition)."""
    scores, labels = _check(scores, labels)
    positives = int(labels.sum())
    if positives == 0:
        return math.nan
    thresholds, true_positives, false_positives = _cumulative_counts(scores, labels)
    precision = true_positives / (true_positives + false_positives)
    recall = true_positives / positives
    previous_recall = torch.cat([torch.zeros(1, dtype=torch.float64), recall[:-1]])
    return float(((recall - previous_recall) * precision).sum())


def fpr_at_tpr(scores: torch.Tensor, labels: torch.Tensor, target_tpr: float = 0.95) -> float:
    """False-positive rate at the first threshold whose true-positive rate reaches target_tpr."""
    scores, labels = _check(scores, labels)
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return math.nan
    _, true_positives, false_positives = _cumulative_counts(scores, labels)
    reached = (true_positives / positives >= target_tpr - 1e-12).nonzero()
    return float(false_positives[reached[0, 0]] / negatives)


def _cumulative_counts(scores: torch.Tensor, labels: torch.Tensor):
    """True and false positives when thresholding at each distinct score, highest first."""
    order = scores.argsort(descending=True, stable=True)
    sorted_scores, sorted_labels = scores[order], labels[order].double()
    true_positives = sorted_labels.cumsum(0)
    false_positives = (1 - sorted_labels).cumsum(0)
    # keep the last index of each run of tied scores: a threshold admits all tied items at once
    last_of_run = torch.ones(len(sorted_scores), dtype=torch.bool)
    last_of_run[:-1] = sorted_scores[1:] != sorted_scores[:-1]
    return sorted_scores[last_of_run], true_positives[last_of_run], false_positives[last_of_run]


def accuracy_with_majority_rate(predictions: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """Accuracy of class predictions and, beside it, the accuracy of always answering the
    most frequent class: 90% accuracy means nothing when 90% of labels are one class."""
    predictions, labels = predictions.flatten().cpu(), labels.flatten().cpu()
    if len(labels) == 0:
        return {"accuracy": math.nan, "majority_rate": math.nan}
    majority = torch.bincount(labels.long()).max().item() / len(labels)
    return {"accuracy": float((predictions == labels).double().mean()), "majority_rate": majority}
