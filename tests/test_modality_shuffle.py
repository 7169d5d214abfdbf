"""The paired derangement and its closed groups (tasks/common/modality_shuffle.py)."""

from __future__ import annotations

import pytest
import torch

from tasks.common.modality_shuffle import closed_groups, paired_derangement


@pytest.mark.parametrize("count", [2, 3, 4, 7, 50, 51])
def test_paired_derangement_moves_every_sample_by_swaps_but_at_most_three(count):
    permutation = paired_derangement(count, seed=3)
    assert sorted(permutation.tolist()) == list(range(count))
    assert (permutation != torch.arange(count)).all()
    unpaired = (permutation[permutation] != torch.arange(count)).sum().item()
    assert unpaired == (3 if count % 2 else 0)
    assert torch.equal(permutation, paired_derangement(count, seed=3))
    assert count < 4 or not torch.equal(permutation, paired_derangement(count, seed=4))


def test_paired_derangement_of_one_sample_is_the_identity():
    assert paired_derangement(1, seed=0).tolist() == [0] and paired_derangement(0, seed=0).numel() == 0


@pytest.mark.parametrize("count, size", [(51, 8), (50, 128), (9, 2)])
def test_closed_groups_cover_every_sample_once_and_keep_each_partner_inside(count, size):
    permutation = paired_derangement(count, seed=1)
    groups = closed_groups(permutation, size)
    assert sorted(torch.cat(groups).tolist()) == list(range(count))
    for group in groups:
        assert set(permutation[group].tolist()) == set(group.tolist())
        assert len(group) < size + 3  # whole cycles (pairs, one rotation of three) past `size`
