"""Shared score metrics against hand computations (and sklearn's definitions)."""

import math

import pytest
import torch

from tasks.common.classification_metrics import (
    accuracy_with_majority_rate, auroc, average_precision, fpr_at_tpr,
)

SCORES = torch.tensor([0.9, 0.8, 0.7, 0.6, 0.55, 0.4, 0.3, 0.2])
LABELS = torch.tensor([1, 1, 0, 1, 0, 0, 1, 0])


def test_auroc_by_hand():
    # positives at 0.9, 0.8, 0.6, 0.3; negatives at 0.7, 0.55, 0.4, 0.2
    # pairs won: 0.9 -> 4, 0.8 -> 4, 0.6 -> 3, 0.3 -> 1 = 12 of 16
    assert auroc(SCORES, LABELS) == pytest.approx(12 / 16)


def test_auroc_counts_ties_as_half_and_is_half_for_a_constant_score():
    assert auroc(torch.tensor([0.5, 0.5, 0.2]), torch.tensor([1, 0, 0])) == pytest.approx((0.5 + 1) / 2)
    assert auroc(torch.full((6,), 0.3), torch.tensor([1, 0, 1, 0, 0, 1])) == pytest.approx(0.5)


def test_auroc_of_perfect_and_reversed_scores():
    assert auroc(SCORES, (SCORES > 0.5).long()) == 1.0
    assert auroc(-SCORES, (SCORES > 0.5).long()) == 0.0


def test_average_precision_by_hand():
    # ranks of positives 1, 2, 4, 7: precisions 1, 1, 3/4, 4/7, averaged over 4 positives
    assert average_precision(SCORES, LABELS) == pytest.approx((1 + 1 + 0.75 + 4 / 7) / 4)


def test_fpr_at_95_tpr_by_hand():
    # reaching all 4 positives (tpr 1 >= 0.95) needs threshold 0.3: negatives above it 0.7, 0.55, 0.4
    assert fpr_at_tpr(SCORES, LABELS, 0.95) == pytest.approx(3 / 4)
    assert fpr_at_tpr(SCORES, LABELS, 0.5) == pytest.approx(0.0)


def test_one_class_only_is_nan_not_a_flattering_number():
    assert math.isnan(auroc(SCORES, torch.ones(8)))
    assert math.isnan(fpr_at_tpr(SCORES, torch.zeros(8)))
    assert math.isnan(average_precision(SCORES, torch.zeros(8)))


def test_accuracy_sits_beside_the_majority_rate():
    labels = torch.tensor([0] * 9 + [1])
    constant = torch.zeros(10, dtype=torch.long)
    assert accuracy_with_majority_rate(constant, labels) == {"accuracy": 0.9, "majority_rate": 0.9}
