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
    "probe/*/zero_fraction": (0.0, 1.0),
    "probe/*/mean_norm": (0.0, INF),
}
# A row whose L2 norm is at most this is a zero vector: a dead ReLU or a zero-initialised layer
# before the normalisation. F.normalize leaves it (nearly) zero, so it has cosine 0 with every
# other row and no spread: the cosine statistic alone reads it as healthy.
ZERO_NORM = 1e-6
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


def zero_vector_fraction(embeddings: torch.Tensor) -> float:
    """Share of rows whose L2 norm is at most ZERO_NORM, in [0, 1]; NaN for no rows."""
    norms = embeddings.detach().float().norm(dim=-1)
    return (norms <= ZERO_NORM).float().mean().item() if len(norms) else float("nan")


def mean_norm(embeddings: torch.Tensor) -> float:
    """Mean L2 norm of the rows as given (before this module normalises them); NaN for none."""
    norms = embeddings.detach().float().norm(dim=-1)
    return norms.mean().item() if len(norms) else float("nan")


def embedding_statistics(embeddings: torch.Tensor, modality: str) -> dict[str, float]:
    """The probe keys of one modality: <modality>/offdiag_cosine, /dim_std, /dim, and
    /zero_fraction (share of zero vectors) and /mean_norm (mean norm of the rows as given)."""
    return {
        f"{modality}/offdiag_cosine": mean_offdiagonal_cosine(embeddings),
        f"{modality}/dim_std": mean_dimension_std(embeddings),
        f"{modality}/dim": float(embeddings.shape[-1]),
        f"{modality}/zero_fraction": zero_vector_fraction(embeddings),
        f"{modality}/mean_norm": mean_norm(embeddings),
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
