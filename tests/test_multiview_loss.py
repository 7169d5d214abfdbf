"""The multiview loss against hand computation; it is never negative, consistency term included."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from tasks.multiview.loss import multiview_loss, view_consistency


def unit_rows(seed: int, rows: int = 4, dim: int = 3) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return F.normalize(torch.randn(rows, dim, generator=generator, dtype=torch.float64), dim=-1)


def negative_log_softmax(logits: list[float], target: int) -> float:
    return math.log(sum(math.exp(value) for value in logits)) - logits[target]


def infonce_by_hand(view_a: torch.Tensor, view_b: torch.Tensor, temperature: float) -> float:
    """Mean over both directions of -log softmax of the matching pair among the batch."""
    size = len(view_a)
    logits = [[float(view_a[i] @ view_b[j]) / temperature for j in range(size)] for i in range(size)]
    a_to_b = sum(negative_log_softmax(logits[i], i) for i in range(size)) / size
    columns = [[logits[i][j] for i in range(size)] for j in range(size)]
    b_to_a = sum(negative_log_softmax(columns[j], j) for j in range(size)) / size
    return (a_to_b + b_to_a) / 2


def consistency_by_hand(view_a: torch.Tensor, view_b: torch.Tensor) -> float:
    distances = [sum((float(x) - float(y)) ** 2 for x, y in zip(a, b)) for a, b in zip(view_a, view_b)]
    return sum(distances) / len(distances)


def test_loss_equals_hand_computed_infonce_plus_weighted_consistency():
    view_a, view_b = unit_rows(0), unit_rows(1)
    losses = multiview_loss(view_a, view_b, temperature=0.2, consistency_weight=0.7)
    infonce = infonce_by_hand(view_a, view_b, 0.2)
    consistency = consistency_by_hand(view_a, view_b)
    assert losses["infonce"].item() == pytest.approx(infonce, rel=1e-5)
    assert losses["consistency"].item() == pytest.approx(consistency, rel=1e-5)
    assert losses["loss"].item() == pytest.approx(infonce + 0.7 * consistency, rel=1e-5)
    assert losses["hard_negative_hinge"].item() == 0.0


def test_consistency_is_two_minus_two_cosine_and_zero_for_identical_views():
    view_a, view_b = unit_rows(2), unit_rows(3)
    cosines = (view_a * view_b).sum(-1)
    assert view_consistency(view_a, view_b).item() == pytest.approx((2 - 2 * cosines).mean().item())
    assert view_consistency(view_a, view_a).item() == pytest.approx(0.0, abs=1e-12)


def test_consistency_reported_at_weight_zero_but_not_added():
    view_a, view_b = unit_rows(4), unit_rows(5)
    losses = multiview_loss(view_a, view_b, temperature=0.1, consistency_weight=0.0)
    assert losses["consistency"].item() > 0
    assert losses["loss"].item() == pytest.approx(losses["infonce"].item())


def test_hard_negative_hinge_is_added_with_its_weight():
    view_a, view_b = unit_rows(6, rows=6), unit_rows(7, rows=6)
    plain = multiview_loss(view_a, view_b, temperature=0.1, consistency_weight=0.3)
    hinged = multiview_loss(
        view_a, view_b, temperature=0.1, consistency_weight=0.3,
        hard_negative_ratio=0.4, hard_negative_weight=0.5, hard_negative_margin=0.2,
    )
    assert hinged["hard_negative_hinge"].item() > 0
    assert hinged["loss"].item() == pytest.approx(
        plain["loss"].item() + 0.5 * hinged["hard_negative_hinge"].item(), rel=1e-6
    )


def test_aligned_views_that_drive_a_positive_only_infonce_negative_keep_the_loss_non_negative():
    # The seed-report bug: "InfoNCE" as -log exp(s_ii / t), without the negatives'
    # denominator, is -s/t: negative as soon as the views agree. Here it is -1 / 0.05 = -20.
    view_a = unit_rows(8, rows=5, dim=8)
    view_b = view_a.clone()
    buggy = -(view_a * view_b).sum(-1).div(0.05).mean().item()
    assert buggy < 0
    losses = multiview_loss(view_a, view_b, temperature=0.05, consistency_weight=1.0)
    assert all(value.item() >= 0 for value in losses.values())
    # float32 log-sum-exp near 0: compare with an absolute tolerance
    assert losses["loss"].item() == pytest.approx(infonce_by_hand(view_a, view_b, 0.05), abs=1e-5)


@pytest.mark.parametrize("seed", range(20))
def test_loss_and_every_term_are_never_negative(seed):
    generator = torch.Generator().manual_seed(seed)
    rows = int(torch.randint(2, 9, (1,), generator=generator))
    view_a, view_b = unit_rows(100 + seed, rows, 5), unit_rows(200 + seed, rows, 5)
    if seed % 3 == 0:  # perfectly aligned pairs: the case where a wrong InfoNCE goes negative
        view_b = view_a.clone()
    temperature = float(torch.empty(1).uniform_(0.01, 1.0, generator=generator))
    losses = multiview_loss(
        view_a,
        view_b,
        temperature=temperature,
        consistency_weight=float(torch.empty(1).uniform_(0, 5, generator=generator)),
        hard_negative_ratio=float(torch.rand(1, generator=generator)),
        hard_negative_weight=float(torch.rand(1, generator=generator)),
    )
    for name, value in losses.items():
        assert torch.isfinite(value) and value.item() >= 0, (name, value)
