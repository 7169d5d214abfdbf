"""Pair verification: is a scored pair a match? Threshold choice and the metrics of one split.

A verifier scores each pair (e.g. the cosine of two embeddings) and calls it a match when the
score reaches a threshold. The threshold is chosen once, on validation pairs (the one that
maximises validation accuracy), and applied unchanged to test pairs: choosing it on test would
report an accuracy no deployed model can have. Accuracy compares each pair's label with its
thresholded score, pair by pair; it is never an argmax over the other items of a batch.
"""

from __future__ import annotations

import math

import torch

from tasks.common.classification_metrics import accuracy_with_majority_rate, auroc


def best_accuracy_threshold(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """The threshold t that maximises the accuracy of `score >= t` against `labels`.

    scores: (P,) pair scores; labels: (P,) in {0, 1}. Candidates are the lowest score (all pairs
    called matches), the midpoints between consecutive distinct scores, and the smallest float
    above the highest score (no pair called a match); among equally accurate candidates the
    lowest wins. NaN when there are no pairs or a score is not finite.
    """
    scores = scores.detach().double().flatten().cpu()
    labels = labels.detach().flatten().cpu().long()
    if len(scores) == 0 or not torch.isfinite(scores).all():
        return math.nan
    order = scores.argsort()
    sorted_scores, sorted_labels = scores[order], labels[order]
    # Cutting before sorted position k calls pairs k.. matches: correct = negatives below k
    # plus positives from k on.
    zero = torch.zeros(1, dtype=torch.long)
    negatives_below = torch.cat([zero, (sorted_labels == 0).long().cumsum(0)])
    positives_from = int(sorted_labels.sum()) - torch.cat([zero, sorted_labels.cumsum(0)])
    correct = negatives_below + positives_from  # (P + 1,): cut k = 0..P
    # A cut between two equal scores cannot be made by any threshold.
    valid = torch.ones(len(correct), dtype=torch.bool)
    valid[1:-1] = sorted_scores[1:] != sorted_scores[:-1]
    best_cut = int(torch.where(valid, correct, torch.full_like(correct, -1)).argmax())
    if best_cut == 0:
        return float(sorted_scores[0])
    if best_cut == len(sorted_scores):
        return math.nextafter(float(sorted_scores[-1]), math.inf)
    return float((sorted_scores[best_cut - 1] + sorted_scores[best_cut]) / 2)


def verification_metrics(
    scores: torch.Tensor, labels: torch.Tensor, threshold: float
) -> dict[str, float]:
    """The verification metrics of one split's pairs at a given threshold.

    scores: (P,) pair scores (cosines); labels: (P,) in {0, 1}; threshold: a pair is called a
    match when score >= threshold (choose it on val with `best_accuracy_threshold`).
    Returns auroc (NaN without both classes), accuracy, majority_rate (accuracy of always
    answering the more frequent label), threshold, and positive_similarity /
    negative_similarity (mean score of matching / non-matching pairs, NaN when absent).
    """
    scores = scores.detach().double().flatten().cpu()
    labels = labels.detach().flatten().cpu().long()
    is_match = labels == 1
    predictions = (scores >= threshold).long()

    def mean(values: torch.Tensor) -> float:
        return float(values.mean()) if len(values) else math.nan

    return {
        "auroc": auroc(scores, labels),
        **accuracy_with_majority_rate(predictions, labels),
        "threshold": float(threshold),
        "positive_similarity": mean(scores[is_match]),
        "negative_similarity": mean(scores[~is_match]),
    }
