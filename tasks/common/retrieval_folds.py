"""Retrieval metrics averaged over folds: COCO's "1K test" protocol.

SCAN and SGRAF (`evaluation.evalrank(..., split="testall", fold5=True)`) score COCO's 5000 test
images as 5 folds of 1000 consecutive images (fold k: images 1000k .. 1000k + 999 and their
5000 captions), compute R@1/5/10 both ways on each fold alone, and report the mean over the
folds. The same with the whole 5000 images is the "5K test". Here the number of folds is a
parameter and the fold size is the split's image count divided by it.
"""

from __future__ import annotations

import torch

from tasks.common.retrieval_metrics import retrieval_metrics


def fold_retrieval_metrics(
    similarity: torch.Tensor, caption_image_index: torch.Tensor, folds: int
) -> list[dict[str, float]]:
    """`retrieval_metrics` of each fold of consecutive images, on that fold's images and captions.

    similarity: (N images, M captions); caption_image_index: (M,) long, the image of each
    caption. N must be a multiple of `folds` (ValueError otherwise). Returns one dict per fold.
    """
    num_images = similarity.shape[0]
    if folds < 1 or num_images % folds:
        raise ValueError(f"{num_images} images do not split into {folds} equal folds")
    fold_size = num_images // folds
    index = caption_image_index.long().cpu()
    results = []
    for fold in range(folds):
        first = fold * fold_size
        in_fold = (index >= first) & (index < first + fold_size)
        block = similarity[first : first + fold_size][:, in_fold]
        results.append(retrieval_metrics(block, index[in_fold] - first))
    return results


def fold_averaged_retrieval_metrics(
    similarity: torch.Tensor, caption_image_index: torch.Tensor, folds: int = 5
) -> dict[str, float]:
    """Each metric of `fold_retrieval_metrics` averaged over the folds (SCAN's fold5 result:
    recalls, mean_r1, rsum and MRR are each the plain mean of the folds' values)."""
    per_fold = fold_retrieval_metrics(similarity, caption_image_index, folds)
    return {key: sum(fold[key] for fold in per_fold) / folds for key in per_fold[0]}
