"""Pair-verification metrics and the positive-pair R@1 against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.common.pair_verification import best_accuracy_threshold, verification_metrics
from tasks.multiview.task import positive_pair_r1

# Two objects A and B, each seen twice (views 1 and 2), as unit vectors:
#   A1 = A2 = (1, 0, 0), B1 = (0, 0.6, 0.8), B2 = (0.6, 0.8, 0)
# Pairs (label):  (A1, A2) 1 -> cos 1.0     (B1, B2) 1 -> cos 0.48
#                 (A1, B2) 0 -> cos 0.6     (B1, A2) 0 -> cos 0.0
A1 = A2 = torch.tensor([1.0, 0.0, 0.0])
B1, B2 = torch.tensor([0.0, 0.6, 0.8]), torch.tensor([0.6, 0.8, 0.0])
PAIR_SCORES = torch.stack([A1 @ A2, B1 @ B2, A1 @ B2, B1 @ A2])
PAIR_LABELS = torch.tensor([1, 1, 0, 0])


def argmax_over_batch_accuracy(view_a: torch.Tensor, view_b: torch.Tensor) -> float:
    """The seed-report bug: 'accuracy' as argmax over the batch's other items == own index."""
    return (view_a @ view_b.T).argmax(dim=1).eq(torch.arange(len(view_a))).double().mean().item()


def test_best_threshold_by_hand():
    # sorted: 0.0 (neg), 0.48 (pos), 0.6 (neg), 1.0 (pos). Cuts and accuracies:
    #   t <= 0.0: 2/4; t = 0.24: 3/4; t = 0.54: 2/4; t = 0.8: 3/4; t > 1.0: 2/4
    # Equally accurate cuts: the lowest wins.
    assert best_accuracy_threshold(PAIR_SCORES, PAIR_LABELS) == pytest.approx(0.24)


def test_best_threshold_at_the_extremes_calls_all_or_nothing_a_match():
    scores = torch.tensor([0.2, 0.5, 0.9])
    assert best_accuracy_threshold(scores, torch.tensor([1, 1, 1])) == pytest.approx(0.2)
    above = best_accuracy_threshold(scores, torch.tensor([0, 0, 0]))
    assert above > scores.max().item() and above == pytest.approx(0.9)
    assert verification_metrics(scores, torch.tensor([0, 0, 0]), above)["accuracy"] == 1.0
    # ties cannot be split: both 0.5s are on the same side of any threshold
    tied = best_accuracy_threshold(torch.tensor([0.5, 0.5, 0.1]), torch.tensor([1, 0, 0]))
    assert tied == pytest.approx(0.3)
    assert math.isnan(best_accuracy_threshold(torch.tensor([0.1, math.nan]), torch.tensor([0, 1])))


def test_accuracy_compares_pair_labels_with_thresholded_cosines_not_argmax_over_the_batch():
    metrics = verification_metrics(PAIR_SCORES, PAIR_LABELS, threshold=0.24)
    # at 0.24: 1.0 -> match (right), 0.48 -> match (right), 0.6 -> match (wrong), 0.0 -> no (right)
    assert metrics["accuracy"] == pytest.approx(3 / 4)
    # argmax over the batch finds each view_a's own view_b (1.0 > 0.6 and 0.48 > 0.0): a wrong 1.0
    buggy = argmax_over_batch_accuracy(torch.stack([A1, B1]), torch.stack([A2, B2]))
    assert buggy == 1.0 and metrics["accuracy"] != buggy
    assert metrics["majority_rate"] == pytest.approx(1 / 2)
    assert metrics["threshold"] == 0.24
    # AUROC: positives 1.0 and 0.48 against negatives 0.6 and 0.0 win 3 of 4 comparisons
    assert metrics["auroc"] == pytest.approx(3 / 4)
    assert metrics["positive_similarity"] == pytest.approx((1.0 + 0.48) / 2)
    assert metrics["negative_similarity"] == pytest.approx((0.6 + 0.0) / 2)


def test_a_given_threshold_is_applied_unchanged():
    # A threshold chosen elsewhere (on val) is used as is, even where another would score better.
    scores, labels = torch.tensor([0.3, 0.2, 0.1]), torch.tensor([1, 1, 0])
    assert verification_metrics(scores, labels, threshold=0.25)["accuracy"] == pytest.approx(2 / 3)
    assert verification_metrics(scores, labels, threshold=0.15)["accuracy"] == pytest.approx(1.0)


def test_majority_rate_beside_accuracy_when_labels_are_unbalanced():
    scores, labels = torch.tensor([0.9, 0.1, 0.2, 0.3]), torch.tensor([0, 0, 0, 1])
    metrics = verification_metrics(scores, labels, threshold=2.0)  # calls nothing a match
    assert metrics["accuracy"] == metrics["majority_rate"] == pytest.approx(3 / 4)


def test_positive_pair_r1_both_ways_by_hand():
    view_a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.8, 0.6]])
    view_b = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-0.6, 0.8]])
    # similarity a_i . b_j:   b0    b1    b2
    #                   a0   1.0   0.0  -0.6    a0 -> b0 right
    #                   a1   0.0   1.0   0.8    a1 -> b1 right
    #                   a2   0.8   0.6   0.0    a2 -> b0 wrong
    # by column: b0 -> a0 right, b1 -> a1 right, b2 -> a1 (0.8) wrong
    assert positive_pair_r1(view_a, view_b) == pytest.approx((2 / 3 + 2 / 3) / 2)


def test_positive_pair_r1_counts_ties_against_the_model():
    collapsed = torch.ones(4, 2) / math.sqrt(2)
    assert positive_pair_r1(collapsed, collapsed) == 0.0
