"""Fusion of per-modality embeddings by learned modality attention.

A small gate reads all modalities' embeddings of a sample and produces softmax weights over the
modalities; the fused embedding is their weighted sum. The weights are returned too, so a task
can report how much the model leans on each modality (`<modality>/attention_weight` probes).
"""

from __future__ import annotations

import torch
from torch import nn


class ModalityAttentionFusion(nn.Module):
    """(B, d) embeddings of M modalities -> fused (B, d) embedding and (B, M) attention weights.

    gate: concat(embeddings) -> Linear(M*d, hidden) -> GELU -> Linear(hidden, M) -> softmax.
    The weights of each sample are positive and sum to 1 over the modalities.
    """

    def __init__(self, num_modalities: int, embed_dim: int, hidden_dim: int = 32):
        super().__init__()
        if num_modalities < 2:
            raise ValueError(f"modality attention needs at least 2 modalities, got {num_modalities}")
        self.num_modalities = num_modalities
        self.gate = nn.Sequential(
            nn.Linear(num_modalities * embed_dim, hidden_dim),
            nn.GELU(),
            nn.Linear(hidden_dim, num_modalities),
        )

    def forward(self, embeddings: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """embeddings: M tensors of shape (B, d), in a fixed modality order.

        Returns (fused (B, d), weights (B, M)); weights[:, m] belongs to embeddings[m].
        """
        if len(embeddings) != self.num_modalities:
            raise ValueError(f"expected {self.num_modalities} modality embeddings, got {len(embeddings)}")
        stacked = torch.stack(embeddings, dim=1)  # (B, M, d)
        weights = torch.softmax(self.gate(stacked.flatten(1)), dim=-1)
        return (weights.unsqueeze(-1) * stacked).sum(dim=1), weights
