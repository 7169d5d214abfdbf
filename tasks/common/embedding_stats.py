"""Statistics of a set of embeddings that reveal collapse, for the health probes.

Every function takes (n, d) embeddings, L2-normalises them itself, and returns a float.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from tasks.base import INF

# Value bounds (tasks.base.Task.value_bounds) of the probes computed here, for every task.
EMBEDDING_PROBE_BOUNDS: dict[str, tuple[float, float]] = {
    "probe/*/offdiag_cosine": (-1.0, 1.0),
    "probe/*/dim_std": (0.0, 1.0),
    "probe/*/dim": (1.0, INF),
}
PAIR_SIMILARITY_BOUNDS: dict[str, tuple[float, float]] = {
    "probe/positive_similarity": (-1.0, 1.0),
    "probe/negative_similarity": (-1.0, 1.0),
}

def mean_offdiagonal_cosine(embeddings: torch.Tensor) -> float:
    """Mean cosine similarity between distinct rows, in [-1, 1]; near 1 means collapsed."""
    normalised = F.normalize(embeddings.detach().float(), dim=-1)
    count = normalised.shape[0]
    if count < 2:
        return float("nan")
    # sum_{i != j} <e_i, e_j> = |sum_i e_i|^2 - sum_i |e_i|^2, without forming the n x n matrix.
    total = normalised.sum(dim=0)
    offdiagonal_sum = total.dot(total) - (normalised * normalised).sum()
    return (offdiagonal_sum / (count * (count - 1))).item()


def mean_dimension_std(embeddings: torch.Tensor) -> float:
    """Mean over dimensions of the per-dimension (population) standard deviation.

    Of the L2-normalised embeddings; healthy spread is about 1 / sqrt(d), collapse gives ~0.
    """
    normalised = F.normalize(embeddings.detach().float(), dim=-1)
    return normalised.std(dim=0, correction=0).mean().item()


def embedding_statistics(embeddings: torch.Tensor, modality: str) -> dict[str, float]:
    """The probe keys of one modality: <modality>/offdiag_cosine, /dim_std and /dim."""
    return {
        f"{modality}/offdiag_cosine": mean_offdiagonal_cosine(embeddings),
        f"{modality}/dim_std": mean_dimension_std(embeddings),
        f"{modality}/dim": float(embeddings.shape[-1]),
    }


def pair_similarities(similarity: torch.Tensor, is_match: torch.Tensor) -> dict[str, float]:
    """Mean cosine of matching and of non-matching pairs.

    similarity: (N, M) cosine similarities; is_match: (N, M) bool, True where the pair matches.
    Returns {"positive_similarity", "negative_similarity"}, each in [-1, 1].
    """
    similarity = similarity.detach().float()
    return {
        "positive_similarity": similarity[is_match].mean().item(),
        "negative_similarity": similarity[~is_match].mean().item(),
    }
