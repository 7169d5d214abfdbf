"""Image-caption similarity of region features and word features: SCAN text-to-image attention,
or cosine of the pooled features; a whole split is scored in chunks.

Inputs everywhere: regions (N, K, d) L2-normalised region features of N images; words (M, L, d)
L2-normalised word features of M captions, padded; word_mask (M, L) bool, True on real tokens.
Outputs are (N, M) scores in [-1, 1], image i against caption j.
"""

from __future__ import annotations

import math
from typing import Callable

import torch
import torch.nn.functional as F

# Largest (images x captions x words x max(regions, d)) intermediate one chunk may build:
# 2^22 float32 values = 16 MiB.
CHUNK_ELEMENTS = 1 << 22

Similarity = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]


def pooled_regions(regions: torch.Tensor) -> torch.Tensor:
    """(N, K, d) -> (N, d): the mean region feature of each image (not normalised)."""
    return regions.mean(dim=1)


def pooled_words(words: torch.Tensor, word_mask: torch.Tensor) -> torch.Tensor:
    """(M, L, d), (M, L) -> (M, d): the mean over each caption's real tokens (not normalised)."""
    mask = word_mask.unsqueeze(-1).to(words.dtype)
    return (words * mask).sum(dim=1) / mask.sum(dim=1).clamp(min=1.0)


def global_similarity(
    regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor
) -> torch.Tensor:
    """Cosine between each image's mean region and each caption's mean word: (N, M)."""
    images = F.normalize(pooled_regions(regions), dim=-1)
    captions = F.normalize(pooled_words(words, word_mask), dim=-1)
    return images @ captions.T


def word_relevances(
    regions: torch.Tensor, words: torch.Tensor, attention_lambda: float
) -> torch.Tensor:
    """SCAN text-to-image attention: (N, M, L) cosine of each word with its attended image.

    Word t of caption m attends over the K regions of image n with weights
    softmax_k(attention_lambda * cos(word_t, region_k)); its relevance is the cosine between
    the word and the attention-weighted sum of regions. (SCAN also clips and re-normalises the
    attention logits across words; the plain softmax here keeps one knob, attention_lambda.)
    """
    scores = torch.einsum("nkd,mld->nmlk", regions, words)
    attention = torch.softmax(attention_lambda * scores, dim=-1)
    attended = torch.einsum("nmlk,nkd->nmld", attention, regions)
    return F.cosine_similarity(attended, words.unsqueeze(0).expand_as(attended), dim=-1, eps=1e-8)


def scan_t2i_similarity(
    regions: torch.Tensor,
    words: torch.Tensor,
    word_mask: torch.Tensor,
    attention_lambda: float,
    aggregation: str = "mean",
    lse_lambda: float = 6.0,
) -> torch.Tensor:
    """SCAN t2i score of every image against every caption: (N, M), in [-1, 1].

    The per-word relevances (`word_relevances`) are pooled over the caption's real tokens by
    their mean, or by log-mean-exp: log(mean_t exp(lse_lambda * R_t)) / lse_lambda. SCAN's
    LogSumExp sums instead of averaging, which adds log(L) / lse_lambda to a caption of L words
    (longer captions score higher, and scores leave [-1, 1]); the mean keeps it a cosine.
    """
    relevance = word_relevances(regions, words, attention_lambda)
    mask = word_mask.unsqueeze(0)
    counts = word_mask.sum(dim=-1).to(relevance.dtype)  # (M,)
    if aggregation == "mean":
        return (relevance * mask).sum(dim=-1) / counts
    if aggregation == "logsumexp":
        scaled = (lse_lambda * relevance).masked_fill(~mask, -math.inf)
        return (torch.logsumexp(scaled, dim=-1) - counts.log()) / lse_lambda
    raise ValueError(f"unknown aggregation {aggregation!r}; use mean or logsumexp")


def similarity_in_chunks(
    similarity: Similarity,
    regions: torch.Tensor,
    words: torch.Tensor,
    word_mask: torch.Tensor,
    max_elements: int = CHUNK_ELEMENTS,
) -> torch.Tensor:
    """similarity(regions, words, word_mask) of a whole split, in blocks of images x captions
    small enough that no intermediate exceeds `max_elements`. Returns (N, M) on the inputs' device.
    """
    num_images, num_regions, dim = regions.shape
    num_captions, num_words, _ = words.shape
    per_pair = max(1, num_words * max(num_regions, dim))
    # Square-ish blocks: about sqrt(budget / per_pair) images, then as many captions as fit.
    image_chunk = min(num_images, max(1, math.isqrt(max_elements // per_pair)))
    caption_chunk = min(num_captions, max(1, max_elements // (per_pair * image_chunk)))
    rows = []
    for image_start in range(0, num_images, image_chunk):
        image_block = regions[image_start : image_start + image_chunk]
        rows.append(
            torch.cat(
                [
                    similarity(
                        image_block,
                        words[start : start + caption_chunk],
                        word_mask[start : start + caption_chunk],
                    )
                    for start in range(0, num_captions, caption_chunk)
                ],
                dim=1,
            )
        )
    return torch.cat(rows, dim=0)
