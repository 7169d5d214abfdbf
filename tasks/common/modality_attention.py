"""Fusion of per-modality embeddings by learned modality attention.

A small gate reads all modalities' embeddings of a sample and produces softmax weights over the
modalities; the fused embedding is their weighted sum. The weights are returned too, so a task
can report how much the model leans on each modality (`<modality>/attention_weight` probes).

Modality dropout (ModDrop) is built in because attention fusion invites modality laziness: the
gate settles on whichever encoder fits the training set first (often a memorising image CNN)
and the other never learns. Dropping one modality of a training sample at random forces the
classifier to work from each modality alone.
"""

from __future__ import annotations

import torch
from torch import nn


class ModalityAttentionFusion(nn.Module):
    """(B, d) embeddings of M modalities -> fused (B, d) embedding and (B, M) attention weights.

    gate: concat(embeddings) -> Linear(M*d, hidden) -> GELU -> Linear(hidden, M) -> softmax.
    The weights of each sample are positive and sum to 1 over the modalities. In training mode,
    with probability `modality_dropout` a sample gets one modality (chosen uniformly) masked out
    of the softmax: its weight is 0 and the others still sum to 1.
    """

    def __init__(
        self, num_modalities: int, embed_dim: int, hidden_dim: int = 32, modality_dropout: float = 0.0
    ):
        super().__init__()
        if num_modalities < 2:
            raise ValueError(f"modality attention needs at least 2 modalities, got {num_modalities}")
        if not 0.0 <= modality_dropout < 1.0:
            raise ValueError(f"modality_dropout must be in [0, 1), got {modality_dropout}")
        self.num_modalities = num_modalities
        self.modality_dropout = modality_dropout
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
        gate_logits = self.gate(stacked.flatten(1))
        if self.training and self.modality_dropout > 0:
            gate_logits = gate_logits.masked_fill(self._dropped(gate_logits), -torch.inf)
        weights = torch.softmax(gate_logits, dim=-1)
        return (weights.unsqueeze(-1) * stacked).sum(dim=1), weights

    def _dropped(self, gate_logits: torch.Tensor) -> torch.Tensor:
        """(B, M) bool: True for the one modality dropped from each selected sample."""
        batch = gate_logits.shape[0]
        selected = torch.rand(batch, device=gate_logits.device) < self.modality_dropout
        which = torch.randint(self.num_modalities, (batch,), device=gate_logits.device)
        one_hot = nn.functional.one_hot(which, self.num_modalities).bool()
        return one_hot & selected[:, None]
