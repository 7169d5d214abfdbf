"""Cross-modal retrieval metrics (Recall@K both ways, rsum, MRR) from a similarity matrix.

Setting: N images and M captions, caption j describing image `caption_image_index[j]`
(Flickr8k/COCO: 5 captions per image, so caption j belongs to image j // 5).

Ties are ranked pessimistically: every wrong item scoring at least as high as the correct one
ranks above it. A collapsed model (constant similarities) therefore gets recall 0, never a
perfect score. A similarity matrix with any non-finite entry gives NaN metrics, so a broken
model is reported as broken rather than ranked.
"""

from __future__ import annotations

import torch

RECALL_CUTOFFS = (1, 5, 10)
DEFAULT_CAPTIONS_PER_IMAGE = 5

_FRACTION_METRICS = ("i2t_r1", "i2t_r5", "i2t_r10", "t2i_r1", "t2i_r5", "t2i_r10", "mean_r1", "mrr")
# Value bounds (tasks.base.Task.value_bounds) of retrieval_metrics' output on val and test.
RETRIEVAL_METRIC_BOUNDS: dict[str, tuple[float, float]] = {
    **{f"{split}/{name}": (0.0, 1.0) for split in ("val", "test") for name in _FRACTION_METRICS},
    **{f"{split}/rsum": (0.0, 6.0) for split in ("val", "test")},
}

def captions_per_image_index(num_images: int, captions_per_image: int = 5) -> torch.Tensor:
    """The caption -> image mapping of the usual layout: caption j belongs to image j // k."""
    return torch.arange(num_images).repeat_interleave(captions_per_image)


def image_to_text_ranks(
    similarity: torch.Tensor, caption_image_index: torch.Tensor
) -> torch.Tensor:
    """For each image, the 1-based rank of its best-ranked correct caption among all captions.

    similarity: (N, M), image i vs caption j. caption_image_index: (M,) image of each caption.
    Returns (N,) long ranks; rank = 1 + number of wrong captions scoring >= that best caption.
    """
    num_images = similarity.shape[0]
    is_match = caption_image_index[None, :] == torch.arange(num_images)[:, None]
    best_match_score = similarity.masked_fill(~is_match, -torch.inf).max(dim=1).values
    wrong_at_least_as_high = (similarity >= best_match_score[:, None]) & ~is_match
    return 1 + wrong_at_least_as_high.sum(dim=1)


def text_to_image_ranks(
    similarity: torch.Tensor, caption_image_index: torch.Tensor
) -> torch.Tensor:
    """For each caption, the 1-based rank of its image among all images.

    similarity: (N, M), image i vs caption j. caption_image_index: (M,) image of each caption.
    Returns (M,) long ranks; rank = 1 + number of other images scoring >= the caption's image.
    """
    per_caption = similarity.T  # (M, N)
    num_images = similarity.shape[0]
    is_match = caption_image_index[:, None] == torch.arange(num_images)[None, :]
    match_score = per_caption.gather(1, caption_image_index[:, None])
    wrong_at_least_as_high = (per_caption >= match_score) & ~is_match
    return 1 + wrong_at_least_as_high.sum(dim=1)


def retrieval_metrics(
    similarity: torch.Tensor, caption_image_index: torch.Tensor | None = None
) -> dict[str, float]:
    """All retrieval metrics of one split, as fractions.

    similarity: (N images, M captions), higher = more similar. caption_image_index: (M,) long,
    the image of each caption; default 5 captions per image in image order.
    Returns i2t_r1/r5/r10, t2i_r1/r5/r10 in [0, 1]; mean_r1 = (i2t_r1 + t2i_r1) / 2;
    rsum = sum of the six recalls, in [0, 6]; mrr = mean of the i2t MRR (best-ranked correct
    caption) and the t2i MRR, in [0, 1].
    """
    similarity = similarity.detach().float().cpu()
    num_images, num_captions = similarity.shape
    if caption_image_index is None:
        caption_image_index = captions_per_image_index(num_images, DEFAULT_CAPTIONS_PER_IMAGE)
    caption_image_index = caption_image_index.long().cpu()
    if caption_image_index.shape != (num_captions,):
        raise ValueError(
            f"caption_image_index has shape {tuple(caption_image_index.shape)}, "
            f"expected ({num_captions},) for a {num_images}x{num_captions} similarity matrix"
        )
    names = [f"{direction}_r{k}" for direction in ("i2t", "t2i") for k in RECALL_CUTOFFS]
    if not torch.isfinite(similarity).all():
        return {name: float("nan") for name in [*names, "mean_r1", "rsum", "mrr"]}

    i2t = image_to_text_ranks(similarity, caption_image_index).double()
    t2i = text_to_image_ranks(similarity, caption_image_index).double()
    metrics = {}
    for direction, ranks in (("i2t", i2t), ("t2i", t2i)):
        for k in RECALL_CUTOFFS:
            metrics[f"{direction}_r{k}"] = (ranks <= k).double().mean().item()
    metrics["mean_r1"] = (metrics["i2t_r1"] + metrics["t2i_r1"]) / 2
    metrics["rsum"] = sum(metrics[name] for name in names)
    metrics["mrr"] = ((1 / i2t).mean().item() + (1 / t2i).mean().item()) / 2
    return metrics


def chance_metrics(num_images: int) -> dict[str, float]:
    """Chance level of R@1 on a split of `num_images` images (each with several captions).

    i2t: the top caption is one of the image's k correct ones out of k * N, so k / (k N) = 1 / N;
    t2i: the top image is the right one out of N. Keys: chance/i2t_r1, chance/t2i_r1, chance/mean_r1.
    """
    level = 1.0 / num_images
    return {"chance/i2t_r1": level, "chance/t2i_r1": level, "chance/mean_r1": level}
