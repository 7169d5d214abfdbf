"""The anomaly task's losses and metrics against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torchvision.ops import sigmoid_focal_loss

from tasks.anomaly import AnomalyConfig
from tasks.anomaly.task import detection_metrics, positive_class_weight, scene_loss
from tasks.common.binary_losses import focal_loss, weighted_binary_cross_entropy

LOGITS = torch.tensor([2.0, -1.0, 0.5, -3.0])
TARGETS = torch.tensor([1.0, 1.0, 0.0, 0.0])


def sigmoid(x: float) -> float:
    return 1 / (1 + math.exp(-x))


def test_weighted_bce_matches_hand_computation():
    w = 3.0
    p = [sigmoid(float(z)) for z in LOGITS]
    by_hand = -(w * math.log(p[0]) + w * math.log(p[1]) + math.log(1 - p[2]) + math.log(1 - p[3])) / 4
    assert weighted_binary_cross_entropy(LOGITS, TARGETS, w).item() == pytest.approx(by_hand, rel=1e-6)


def test_focal_loss_matches_hand_computation_with_and_without_alpha():
    gamma, alpha = 2.0, 0.25
    p = [sigmoid(float(z)) for z in LOGITS]
    p_t = [p[0], p[1], 1 - p[2], 1 - p[3]]
    terms = [-((1 - q) ** gamma) * math.log(q) for q in p_t]
    assert focal_loss(LOGITS, TARGETS, gamma).item() == pytest.approx(sum(terms) / 4, rel=1e-6)
    weights = [alpha, alpha, 1 - alpha, 1 - alpha]
    by_hand = sum(w * t for w, t in zip(weights, terms)) / 4
    assert focal_loss(LOGITS, TARGETS, gamma, alpha).item() == pytest.approx(by_hand, rel=1e-6)
    reference = sigmoid_focal_loss(LOGITS, TARGETS, alpha=alpha, gamma=gamma, reduction="mean")
    assert focal_loss(LOGITS, TARGETS, gamma, alpha).item() == pytest.approx(reference.item(), rel=1e-5)


def test_focal_loss_with_gamma_zero_is_plain_bce():
    assert focal_loss(LOGITS, TARGETS, 0.0).item() == pytest.approx(
        weighted_binary_cross_entropy(LOGITS, TARGETS, 1.0).item(), rel=1e-6
    )


@pytest.mark.parametrize("gamma", [0.5, 1.0, 3.0])
def test_losses_are_never_negative_and_stay_finite_with_finite_gradients(gamma):
    logits = torch.tensor([-80.0, -5.0, 0.0, 5.0, 80.0], requires_grad=True)
    targets = torch.tensor([0.0, 1.0, 1.0, 0.0, 1.0])
    for loss in (focal_loss(logits, targets, gamma, 0.5), weighted_binary_cross_entropy(logits, targets, 2.0)):
        assert loss.item() >= 0 and math.isfinite(loss.item())
        (gradient,) = torch.autograd.grad(loss, logits)
        assert torch.isfinite(gradient).all()


def test_auto_pos_weight_is_negatives_over_positives_of_train():
    labels = torch.tensor([1.0, 0.0, 0.0, 0.0, 1.0, 0.0])
    assert positive_class_weight(AnomalyConfig(), labels) == pytest.approx(2.0)
    assert positive_class_weight(AnomalyConfig(pos_weight=0.7), labels) == pytest.approx(0.7)


def test_scene_loss_follows_the_configured_loss():
    bce = scene_loss(AnomalyConfig(loss="bce"), LOGITS, TARGETS, pos_weight=2.0)
    assert bce.item() == pytest.approx(weighted_binary_cross_entropy(LOGITS, TARGETS, 2.0).item())
    focal = scene_loss(AnomalyConfig(loss="focal", focal_gamma=1.5, focal_alpha=0.6), LOGITS, TARGETS, 2.0)
    assert focal.item() == pytest.approx(focal_loss(LOGITS, TARGETS, 1.5, 0.6).item())


def test_config_rejects_a_non_positive_pos_weight_and_indivisible_heads():
    with pytest.raises(ValueError):
        AnomalyConfig(pos_weight=0.0)
    with pytest.raises(ValueError):
        AnomalyConfig(embed_dim=30, attention_heads=4)


def test_detection_metrics_by_hand():
    # positives score 0.9, 0.4; negatives 0.6, 0.2, 0.1: 5 of 6 positive-negative pairs ordered
    scores = torch.tensor([0.9, 0.4, 0.6, 0.2, 0.1])
    labels = torch.tensor([1, 1, 0, 0, 0])
    metrics = detection_metrics(scores, labels)
    assert metrics["auroc"] == pytest.approx(5 / 6)
    # ranked 0.9(+) 0.6(-) 0.4(+): AP = 1/2 * 1 + 1/2 * 2/3
    assert metrics["auprc"] == pytest.approx(0.5 + 1 / 3)
    assert metrics["fpr95"] == pytest.approx(1 / 3)  # both positives found once 0.4 is admitted
    assert metrics["accuracy"] == pytest.approx(3 / 5)  # 0.9 right, 0.4 and 0.6 wrong
    assert metrics["chance/auroc"] == 0.5 and metrics["chance/auprc"] == pytest.approx(0.4)


def test_majority_class_accuracy_is_always_reported_beside_its_majority_rate():
    """The seed-report bug "90% accuracy that is the majority class": a detector answering
    "normal" for every scene scores 0.9 accuracy on 90% normal scenes, and the report must
    show the 0.9 majority rate beside it (and AUROC 0.5), so it cannot pass for a good model."""
    labels = torch.tensor([1] + [0] * 9)
    metrics = detection_metrics(torch.full((10,), 0.1), labels)
    assert metrics["accuracy"] == pytest.approx(0.9)
    assert metrics["majority_rate"] == pytest.approx(0.9)
    assert metrics["auroc"] == pytest.approx(0.5)
