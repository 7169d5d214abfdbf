"""Retrieval metrics on hand-made similarity matrices."""

from __future__ import annotations

import math

import pytest
import torch

from tasks.common.embedding_stats import (
    embedding_statistics,
    mean_dimension_std,
    mean_offdiagonal_cosine,
    pair_similarities,
)
from tasks.common.retrieval_metrics import (
    captions_per_image_index,
    chance_metrics,
    retrieval_metrics,
)

RECALL_KEYS = ["i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"]


def perfect_similarity(num_images: int, captions_per_image: int = 5) -> torch.Tensor:
    index = captions_per_image_index(num_images, captions_per_image)
    return (index[None, :] == torch.arange(num_images)[:, None]).float()


def test_perfect_similarity_gives_every_metric_its_maximum():
    metrics = retrieval_metrics(perfect_similarity(12))
    assert all(metrics[key] == 1.0 for key in RECALL_KEYS)
    assert metrics["mean_r1"] == 1.0 and metrics["rsum"] == 6.0 and metrics["mrr"] == 1.0


def test_adversarial_similarity_ranks_every_match_last():
    metrics = retrieval_metrics(1.0 - perfect_similarity(12))
    assert all(metrics[key] == 0.0 for key in RECALL_KEYS)
    # i2t: 55 wrong captions above -> rank 56; t2i: 11 wrong images above -> rank 12.
    assert metrics["mrr"] == pytest.approx((1 / 56 + 1 / 12) / 2)


def test_hand_worked_matrix_with_two_captions_per_image():
    caption_image_index = torch.tensor([0, 0, 1, 1, 2, 2])
    similarity = torch.tensor(
        [
            [0.9, 0.1, 0.8, 0.2, 0.3, 0.4],  # best match 0.9, nothing above: rank 1
            [0.7, 0.6, 0.5, 0.65, 0.1, 0.2],  # best match 0.65, one wrong above: rank 2
            [0.9, 0.8, 0.7, 0.6, 0.1, 0.5],  # best match 0.5, four wrong above: rank 5
        ]
    )
    # t2i ranks per caption (ties count against): 2 (tie 0.9), 3, 3, 1, 3 (tie 0.1), 1.
    metrics = retrieval_metrics(similarity, caption_image_index)
    assert metrics["i2t_r1"] == pytest.approx(1 / 3)
    assert metrics["i2t_r5"] == 1.0
    assert metrics["t2i_r1"] == pytest.approx(2 / 6)
    assert metrics["t2i_r5"] == 1.0
    assert metrics["mean_r1"] == pytest.approx(1 / 3)
    assert metrics["rsum"] == pytest.approx(1 / 3 + 1 + 1 + 1 / 3 + 1 + 1)
    i2t_mrr = (1 + 1 / 2 + 1 / 5) / 3
    t2i_mrr = (1 / 2 + 1 / 3 + 1 / 3 + 1 + 1 / 3 + 1) / 6
    assert metrics["mrr"] == pytest.approx((i2t_mrr + t2i_mrr) / 2)


def test_recall_at_five_misses_a_match_ranked_sixth():
    similarity = perfect_similarity(12)
    similarity[0, :5] = 0.5  # image 0's own captions
    similarity[0, 5:10] = 0.9  # five wrong captions above them: best match at rank 6
    metrics = retrieval_metrics(similarity)
    assert metrics["i2t_r5"] == pytest.approx(11 / 12)
    assert metrics["i2t_r10"] == 1.0


def test_constant_similarity_is_not_perfect():
    metrics = retrieval_metrics(torch.full((20, 100), 0.3))
    assert metrics["mean_r1"] == 0.0 and metrics["rsum"] < 6.0
    assert metrics["mean_r1"] < chance_metrics(20)["chance/mean_r1"] + 1e-9


def test_non_finite_similarity_gives_nan_not_a_ranking():
    similarity = perfect_similarity(4)
    similarity[1, 2] = float("nan")
    assert all(math.isnan(value) for value in retrieval_metrics(similarity).values())


def test_mapping_must_fit_the_matrix():
    with pytest.raises(ValueError, match="caption_image_index"):
        retrieval_metrics(torch.zeros(3, 14))


def test_chance_level_is_one_over_number_of_images():
    assert chance_metrics(100) == {
        "chance/i2t_r1": 0.01,
        "chance/t2i_r1": 0.01,
        "chance/mean_r1": 0.01,
    }


def test_collapsed_embeddings_have_offdiagonal_cosine_one_and_no_spread():
    collapsed = torch.tensor([[1.0, 2.0, 2.0]]).repeat(6, 1)
    stats = embedding_statistics(collapsed, "image")
    assert stats["image/offdiag_cosine"] == pytest.approx(1.0)
    assert stats["image/dim_std"] == pytest.approx(0.0, abs=1e-7)
    assert stats["image/dim"] == 3.0


def test_orthogonal_embeddings_statistics_by_hand():
    basis = torch.eye(4) * 3.0  # normalised to the identity
    assert mean_offdiagonal_cosine(basis) == pytest.approx(0.0)
    # Each column holds one 1 and three 0s: population std sqrt(3/16).
    assert mean_dimension_std(basis) == pytest.approx(math.sqrt(3 / 16))


def test_pair_similarities_split_matching_from_non_matching():
    similarity = torch.tensor([[0.9, 0.1], [0.3, 0.5]])
    is_match = torch.eye(2, dtype=torch.bool)
    assert pair_similarities(similarity, is_match) == pytest.approx(
        {"positive_similarity": 0.7, "negative_similarity": 0.2}
    )
