"""The contrastive loss against hand computation: InfoNCE, label smoothing, hard-negative hinge."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tasks.common.contrastive import (
    contrastive_loss,
    hard_negative_count,
    hard_negative_hinge,
    symmetric_infonce,
)


def cross_entropy_by_hand(logits: list[float], target: int, smoothing: float) -> float:
    """-log softmax written out; with smoothing, the target mixes one-hot and uniform."""
    log_normaliser = math.log(sum(math.exp(value) for value in logits))
    negative_log_probs = [log_normaliser - value for value in logits]
    uniform = sum(negative_log_probs) / len(logits)
    return (1 - smoothing) * negative_log_probs[target] + smoothing * uniform


def infonce_by_hand(
    images: torch.Tensor, texts: torch.Tensor, temperature: float, smoothing: float = 0.0
) -> float:
    size = images.shape[0]
    similarity = [
        [float(images[i] @ texts[j]) / temperature for j in range(size)] for i in range(size)
    ]
    image_to_text = (
        sum(cross_entropy_by_hand(similarity[i], i, smoothing) for i in range(size)) / size
    )
    columns = [[similarity[i][j] for i in range(size)] for j in range(size)]
    text_to_image = sum(cross_entropy_by_hand(columns[j], j, smoothing) for j in range(size)) / size
    return (image_to_text + text_to_image) / 2


def unit_rows(seed: int, rows: int = 4, dim: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=generator, dtype=torch.float64), dim=-1)


# Image i is the basis vector e_i, so similarity[i][j] = texts[j][i]:
#   similarity = [[0.8, 0.6, 0.0],
#                 [0.6, 0.8, 0.6],
#                 [0.0, 0.0, 0.8]]   (every positive is 0.8)
BASIS_IMAGES = torch.eye(3, dtype=torch.float64)
HAND_TEXTS = torch.tensor([[0.8, 0.6, 0.0], [0.6, 0.8, 0.0], [0.0, 0.6, 0.8]], dtype=torch.float64)


def test_infonce_matches_row_by_row_negative_log_softmax():
    images, texts = unit_rows(0), unit_rows(1)
    expected = infonce_by_hand(images, texts, temperature=0.1)
    assert symmetric_infonce(images, texts, temperature=0.1).item() == pytest.approx(
        expected, rel=1e-9
    )


def test_infonce_averages_both_directions():
    # The similarity is asymmetric, so the image->text direction alone gives another value.
    images, texts = BASIS_IMAGES, HAND_TEXTS
    one_direction = (
        sum(
            cross_entropy_by_hand([float(images[i] @ texts[j]) / 0.5 for j in range(3)], i, 0.0)
            for i in range(3)
        )
        / 3
    )
    loss = symmetric_infonce(images, texts, temperature=0.5).item()
    assert loss == pytest.approx(infonce_by_hand(images, texts, 0.5), rel=1e-9)
    assert loss != pytest.approx(one_direction, rel=1e-6)


def test_label_smoothing_matches_hand_computation():
    images, texts = unit_rows(2), unit_rows(3)
    expected = infonce_by_hand(images, texts, temperature=0.07, smoothing=0.1)
    loss = symmetric_infonce(images, texts, temperature=0.07, label_smoothing=0.1).item()
    assert loss == pytest.approx(expected, rel=1e-9)
    assert loss != pytest.approx(infonce_by_hand(images, texts, 0.07), rel=1e-6)


def test_hard_negative_count_is_ceil_of_ratio_times_negatives():
    assert hard_negative_count(4, 0.5) == 2  # ceil(1.5)
    assert hard_negative_count(4, 0.34) == 2  # ceil(1.02)
    assert hard_negative_count(4, 0.0) == 0
    assert hard_negative_count(4, 1.0) == 3


def test_hard_negative_hinge_with_hardest_negative_only():
    # k = ceil(0.5 * 2) = 1, margin 0.5. Rows: relu(0.5 - 0.8 + [0.6, 0.6, 0.0]) = [0.3, 0.3, 0]
    # -> 0.2; columns: hardest negatives [0.6, 0.6, 0.6] -> 0.3 each -> 0.3. Mean: 0.25.
    hinge = hard_negative_hinge(BASIS_IMAGES, HAND_TEXTS, hard_negative_ratio=0.5, margin=0.5)
    assert hinge.item() == pytest.approx(0.25, abs=1e-12)


def test_hard_negative_hinge_with_all_negatives():
    # k = 2. Rows: (0.3 + 0) / 2, (0.3 + 0.3) / 2, (0 + 0) / 2 -> 0.15; columns: 0.15 each. Mean 0.15.
    hinge = hard_negative_hinge(BASIS_IMAGES, HAND_TEXTS, hard_negative_ratio=1.0, margin=0.5)
    assert hinge.item() == pytest.approx(0.15, abs=1e-12)


def test_total_is_infonce_plus_weighted_hinge():
    parts = contrastive_loss(
        BASIS_IMAGES,
        HAND_TEXTS,
        temperature=0.5,
        hard_negative_ratio=0.5,
        hard_negative_weight=2.0,
        hard_negative_margin=0.5,
    )
    assert parts["hard_negative_hinge"].item() == pytest.approx(0.25, abs=1e-6)
    assert parts["infonce"].item() == pytest.approx(
        infonce_by_hand(BASIS_IMAGES, HAND_TEXTS, 0.5), rel=1e-6
    )
    assert parts["loss"].item() == pytest.approx(parts["infonce"].item() + 2.0 * 0.25, rel=1e-6)


@pytest.mark.parametrize("ratio, weight", [(0.0, 1.0), (0.5, 0.0)])
def test_hinge_reported_as_zero_when_switched_off(ratio, weight):
    parts = contrastive_loss(
        BASIS_IMAGES,
        HAND_TEXTS,
        temperature=0.5,
        hard_negative_ratio=ratio,
        hard_negative_weight=weight,
        hard_negative_margin=0.5,
    )
    assert parts["hard_negative_hinge"].item() == 0.0
    assert parts["loss"].item() == parts["infonce"].item()


@pytest.mark.parametrize("seed", range(20))
def test_loss_is_never_negative(seed):
    generator = torch.Generator().manual_seed(seed)
    size = 2 + seed % 7
    images = F.normalize(torch.randn(size, 8, generator=generator), dim=-1)
    # Half the cases are perfectly aligned pairs at a tiny temperature: the loss floor.
    texts = (
        images.clone()
        if seed % 2
        else F.normalize(torch.randn(size, 8, generator=generator), dim=-1)
    )
    parts = contrastive_loss(
        images,
        texts,
        temperature=0.01 + seed / 10,
        label_smoothing=(seed % 3) / 10,
        hard_negative_ratio=(seed % 4) / 3,
        hard_negative_weight=seed % 2,
        hard_negative_margin=0.2,
    )
    for value in parts.values():
        assert torch.isfinite(value) and value.item() >= 0.0


def test_loss_gradient_reaches_both_embeddings():
    images = unit_rows(4).float().requires_grad_()
    texts = unit_rows(5).float().requires_grad_()
    contrastive_loss(
        images,
        texts,
        0.07,
        hard_negative_ratio=0.5,
        hard_negative_weight=1.0,
        hard_negative_margin=2.0,
    )["loss"].backward()
    assert images.grad.abs().sum() > 0 and texts.grad.abs().sum() > 0
