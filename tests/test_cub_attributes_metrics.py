"""The cub_attributes loss, metrics and fusion against hand computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.common.modality_attention import ModalityAttentionFusion
from tasks.common.modality_shuffle import derangement
from tasks.common.multiclass_metrics import multiclass_metrics, top_k_accuracy
from tasks.cub_attributes.task import classification_loss


def cross_entropy_by_hand(logits: list[float], target: int, smoothing: float) -> float:
    """-log softmax written out; with smoothing, the target mixes one-hot and uniform."""
    log_normaliser = math.log(sum(math.exp(value) for value in logits))
    negative_log_probs = [log_normaliser - value for value in logits]
    uniform = sum(negative_log_probs) / len(logits)
    return (1 - smoothing) * negative_log_probs[target] + smoothing * uniform


# Rows are samples, columns classes. Argmax over classes: [0, 2, 0] -> 2 of 3 right for labels
# [0, 2, 2]. Argmax over the BATCH (dim 0) would give [2, 2, 1] -> 1 of 3: the seed-report bug.
LOGITS = torch.tensor([[5.0, 0.0, 0.0], [0.0, 1.0, 9.0], [6.0, 2.0, 1.0]])
LABELS = torch.tensor([0, 2, 2])


def test_accuracy_takes_the_argmax_over_classes_not_over_the_batch():
    assert (LOGITS.argmax(dim=0) == LABELS).float().mean().item() == pytest.approx(1 / 3)
    assert top_k_accuracy(LOGITS, LABELS, 1) == pytest.approx(2 / 3)
    assert multiclass_metrics(LOGITS, LABELS, num_classes=3)["accuracy"] == pytest.approx(2 / 3)


def test_top_k_accuracy_counts_labels_among_the_k_highest_scores():
    logits = torch.tensor(
        [
            [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0],  # label 4 is 5th -> in the top 5
            [0.6, 0.5, 0.4, 0.3, 0.2, 0.1, 0.0],  # label 5 is 6th -> not
            [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 1.0],  # label 6 is 1st
        ]
    )
    labels = torch.tensor([4, 5, 6])
    assert top_k_accuracy(logits, labels, 5) == pytest.approx(2 / 3)
    assert top_k_accuracy(logits, labels, 1) == pytest.approx(1 / 3)
    assert top_k_accuracy(logits, labels, 100) == 1.0  # k capped at the number of classes


def test_ties_count_against_the_model_and_broken_logits_are_nan():
    constant = torch.zeros(4, 10)
    assert top_k_accuracy(constant, torch.arange(4), 1) == 0.0
    assert top_k_accuracy(constant, torch.arange(4), 5) == 0.0
    broken = LOGITS.clone()
    broken[1, 1] = math.nan
    assert math.isnan(top_k_accuracy(broken, LABELS, 1))


def test_metrics_report_chance_levels_and_the_majority_rate():
    labels = torch.tensor([0, 0, 1, 2])
    logits = torch.nn.functional.one_hot(labels, 8).float()
    metrics = multiclass_metrics(logits, labels, num_classes=8)
    assert metrics == {
        "accuracy": 1.0,
        "top5_accuracy": 1.0,
        "majority_rate": 0.5,
        "chance/accuracy": 1 / 8,
        "chance/top5_accuracy": 5 / 8,
    }
    assert multiclass_metrics(LOGITS, LABELS, 3)["chance/top5_accuracy"] == 1.0
    with pytest.raises(ValueError, match="classes"):
        multiclass_metrics(LOGITS, LABELS, num_classes=4)


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_loss_is_label_smoothed_cross_entropy(smoothing):
    losses = classification_loss(LOGITS, LABELS, smoothing)
    expected = sum(
        cross_entropy_by_hand(LOGITS[i].tolist(), int(LABELS[i]), smoothing) for i in range(3)
    ) / 3
    assert losses["loss"].item() == pytest.approx(expected, rel=1e-5)
    assert losses["accuracy"].item() == pytest.approx(2 / 3)
    assert not losses["accuracy"].requires_grad


def test_attention_weights_sum_to_one_and_mix_the_embeddings():
    torch.manual_seed(0)
    fusion = ModalityAttentionFusion(num_modalities=2, embed_dim=4, hidden_dim=3).eval()
    image, attributes = torch.randn(5, 4), torch.randn(5, 4)
    fused, weights = fusion([image, attributes])
    assert weights.shape == (5, 2) and (weights > 0).all()
    assert torch.allclose(weights.sum(dim=1), torch.ones(5))
    assert torch.allclose(fused, weights[:, :1] * image + weights[:, 1:] * attributes, atol=1e-6)


def test_gate_that_prefers_one_modality_passes_it_through():
    fusion = ModalityAttentionFusion(2, embed_dim=3, hidden_dim=2).eval()
    torch.nn.init.zeros_(fusion.gate[2].weight)
    with torch.no_grad():
        fusion.gate[2].bias.copy_(torch.tensor([-50.0, 50.0]))  # all weight on modality 1
    first, second = torch.randn(4, 3), torch.randn(4, 3)
    fused, weights = fusion([first, second])
    assert torch.allclose(fused, second, atol=1e-6)
    assert torch.allclose(weights, torch.tensor([[0.0, 1.0]]).expand(4, 2), atol=1e-6)


def test_modality_dropout_zeroes_one_weight_per_dropped_sample_and_keeps_the_sum():
    torch.manual_seed(0)
    fusion = ModalityAttentionFusion(2, embed_dim=4, modality_dropout=0.5).train()
    fused, weights = fusion([torch.randn(200, 4), torch.randn(200, 4)])
    assert torch.allclose(weights.sum(dim=1), torch.ones(200))
    dropped = (weights == 0).any(dim=1)
    assert 60 < int(dropped.sum()) < 140  # about half of the samples
    assert ((weights == 1) == (weights == 0).flip(1)).all()
    fused.sum().backward()
    assert fusion.gate[0].weight.grad.abs().sum() > 0
    _, eval_weights = fusion.eval()([torch.randn(200, 4), torch.randn(200, 4)])
    assert (eval_weights > 0).all()  # never dropped at evaluation


def test_derangement_moves_every_sample_and_is_fixed_by_its_seed():
    permutation = derangement(50, seed=3)
    assert sorted(permutation.tolist()) == list(range(50))
    assert (permutation != torch.arange(50)).all()
    assert torch.equal(permutation, derangement(50, seed=3))
