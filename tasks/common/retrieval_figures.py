"""The figures of an image-caption retrieval task (retrieval, zh_matching): recall@K both ways,
matching vs non-matching similarities, and the top-5 captions of the first images."""

from __future__ import annotations

from typing import Callable

import torch
from matplotlib.figure import Figure

from tasks.common.figures import (
    RetrievedItem, recall_at_k_curves, retrieval_examples, similarity_histograms, top_retrieved,
)

GRID_QUERIES = 3  # images shown in the top-5 grid
GRID_RETRIEVED = 5


def retrieval_figures(similarity: torch.Tensor, caption_image_index: torch.Tensor,
                      image_cell: Callable[[int], RetrievedItem],
                      caption_text: Callable[[int], str]) -> dict[str, Figure]:
    """similarity: (N images, M captions) scores; caption_image_index: (M,) caption -> image;
    image_cell(i): image i's grid cell (a thumbnail or a label); caption_text(j): caption j.
    Returns {"recall_at_k", "similarities", "top5_retrieved"} figures."""
    images = similarity.shape[0]
    is_match = caption_image_index[None, :] == torch.arange(images)[:, None]
    queries = list(range(min(GRID_QUERIES, images)))
    rows = [(image_cell(query), [RetrievedItem(text=caption_text(j), correct=bool(caption_image_index[j] == query))
                                 for j in top])
            for query, top in zip(queries, top_retrieved(similarity, queries, GRID_RETRIEVED))]
    return {
        "recall_at_k": recall_at_k_curves(similarity, caption_image_index),
        "similarities": similarity_histograms(similarity[is_match], similarity[~is_match],
                                              title="image-caption similarity"),
        "top5_retrieved": retrieval_examples(rows, title=f"top {GRID_RETRIEVED} captions per image"),
    }
