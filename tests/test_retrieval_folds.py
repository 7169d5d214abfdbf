"""COCO's 5-fold 1K protocol (tasks/common/retrieval_folds.py) against hand-computed values and
against SCAN/SGRAF's own ranking procedure re-implemented in numpy."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tasks.common.retrieval_folds import fold_averaged_retrieval_metrics, fold_retrieval_metrics
from tasks.common.retrieval_metrics import retrieval_metrics

# 4 images with 2 captions each (caption j -> image j // 2), in 2 folds of 2 images.
INDEX = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
CROSS_FOLD = 5.0  # scores between a fold's images and another fold's captions
SIMILARITY = torch.tensor([
    # fold A: image 0 and 1 each rank their own captions first, both ways
    [0.9, 0.8, 0.1, 0.2, CROSS_FOLD, CROSS_FOLD, CROSS_FOLD, CROSS_FOLD],
    [0.3, 0.2, 0.7, 0.6, CROSS_FOLD, CROSS_FOLD, CROSS_FOLD, CROSS_FOLD],
    # fold B: image 2's best own caption (0.2) is beaten by image 3's 0.9 and 0.3 -> i2t rank 3;
    # image 3's best own caption (0.6) is first -> rank 1; every caption's own image is second
    [CROSS_FOLD] * 4 + [0.1, 0.2, 0.9, 0.3],
    [CROSS_FOLD] * 4 + [0.5, 0.4, 0.6, 0.1],
])


def test_fold_metrics_match_the_hand_computed_example():
    fold_a, fold_b = fold_retrieval_metrics(SIMILARITY, INDEX, folds=2)
    assert fold_a["i2t_r1"] == fold_a["t2i_r1"] == fold_a["mrr"] == 1.0 and fold_a["rsum"] == 6.0
    # fold B by hand: i2t ranks (3, 1), t2i ranks (2, 2, 2, 2); R@5 and R@10 are 1.
    assert fold_b["i2t_r1"] == 0.5 and fold_b["t2i_r1"] == 0.0 and fold_b["mean_r1"] == 0.25
    assert fold_b["rsum"] == 0.5 + 1 + 1 + 0 + 1 + 1
    assert fold_b["mrr"] == pytest.approx(((1 / 3 + 1) / 2 + 1 / 2) / 2)
    averaged = fold_averaged_retrieval_metrics(SIMILARITY, INDEX, folds=2)
    assert averaged["i2t_r1"] == 0.75 and averaged["t2i_r1"] == 0.5
    assert averaged["mean_r1"] == 0.625 and averaged["rsum"] == 5.25
    assert averaged["mrr"] == pytest.approx((1 + 7 / 12) / 2)


def test_folds_ignore_scores_across_folds_that_the_whole_split_counts():
    whole = retrieval_metrics(SIMILARITY, INDEX)
    assert whole["i2t_r1"] == 0.0  # every image's top captions are another fold's 5.0 scores
    assert fold_averaged_retrieval_metrics(SIMILARITY, INDEX, folds=2)["i2t_r1"] == 0.75
    assert fold_averaged_retrieval_metrics(SIMILARITY, INDEX, folds=1) == whole


def scan_recalls(similarity: np.ndarray) -> list[float]:
    """SCAN/SGRAF evaluation.py's i2t and t2i (5 captions per image, argsort ranking) R@1/5/10,
    as fractions: the reference the fold average is checked against."""
    images = similarity.shape[0]
    i2t = np.array([
        min(np.where(np.argsort(similarity[i])[::-1] == j)[0][0] for j in range(5 * i, 5 * i + 5))
        for i in range(images)
    ])
    t2i = np.array([
        np.where(np.argsort(similarity.T[j])[::-1] == j // 5)[0][0] for j in range(5 * images)
    ])
    return [float((ranks < k).mean()) for ranks in (i2t, t2i) for k in (1, 5, 10)]


def test_five_fold_average_equals_scans_evalrank_fold5_on_random_scores():
    generator = torch.Generator().manual_seed(0)
    images = 5 * 12  # 5 folds of 12 images, 60 captions each
    index = torch.arange(images).repeat_interleave(5)
    # a weak signal so recalls are neither 0 nor 1; continuous scores, so no ties
    similarity = torch.rand(images, 5 * images, generator=generator, dtype=torch.float64)
    similarity += 0.3 * (index[None, :] == torch.arange(images)[:, None])
    ours = fold_averaged_retrieval_metrics(similarity, index, folds=5)
    fold = images // 5
    scan = np.mean([
        scan_recalls(similarity[k * fold:(k + 1) * fold, 5 * k * fold:5 * (k + 1) * fold].numpy())
        for k in range(5)
    ], axis=0)
    names = ["i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10"]
    assert [ours[name] for name in names] == pytest.approx(list(scan), abs=1e-12)
    assert 0.05 < ours["mean_r1"] < 0.95


def test_images_that_do_not_split_into_equal_folds_are_refused():
    with pytest.raises(ValueError, match="6 images do not split into 5 equal folds"):
        fold_averaged_retrieval_metrics(torch.zeros(6, 30), torch.arange(6).repeat_interleave(5))
