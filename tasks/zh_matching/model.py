"""The matcher: region features and caption words projected into one space, scored by SCAN
text-to-image attention or by pooled cosine (similarity.py)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from tasks.zh_matching.config import ZhMatchingConfig
from tasks.zh_matching.similarity import global_similarity, scan_t2i_similarity
from tasks.zh_matching.vocabulary import Vocabulary

FINGERPRINT_BUFFER = "vocabulary_fingerprint"


class RegionEncoder(nn.Module):
    """(B, K, feature_dim) precomputed region features -> (B, K, embed_dim) unit vectors."""

    def __init__(self, feature_dim: int, embed_dim: int):
        super().__init__()
        self.projection = nn.Linear(feature_dim, embed_dim)

    def forward(self, region_features: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.projection(region_features), dim=-1)


class CaptionEncoder(nn.Module):
    """Word embeddings + bidirectional GRU, the two directions averaged (as in SCAN).

    (B, L) token ids (padding id 0) and (B,) lengths -> (B, L, embed_dim) unit word features;
    rows past a caption's length are zero.
    """

    def __init__(self, vocab_size: int, word_dim: int, embed_dim: int, layers: int):
        super().__init__()
        self.embed_dim = embed_dim
        self.embedding = nn.Embedding(vocab_size, word_dim, padding_idx=0)
        self.gru = nn.GRU(
            word_dim, embed_dim, num_layers=layers, batch_first=True, bidirectional=True
        )

    def forward(self, token_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        packed = pack_padded_sequence(
            self.embedding(token_ids), lengths.cpu(), batch_first=True, enforce_sorted=False
        )
        states, _ = pad_packed_sequence(
            self.gru(packed)[0], batch_first=True, total_length=token_ids.shape[1]
        )
        batch, length, _ = states.shape
        words = states.view(batch, length, 2, self.embed_dim).mean(dim=2)
        return F.normalize(words, dim=-1)  # zero padding rows stay zero


class RegionWordMatcher(nn.Module):
    """Scores images (region features) against captions (token ids).

    Holds a buffer with the size and fingerprint of the vocabulary it was built for, so its
    state_dict carries them: loading weights trained with another vocabulary raises instead of
    silently reading the wrong embedding rows.
    """

    def __init__(self, config: ZhMatchingConfig, feature_dim: int, vocabulary: Vocabulary):
        super().__init__()
        self.region_encoder = RegionEncoder(feature_dim, config.embed_dim)
        self.caption_encoder = CaptionEncoder(
            len(vocabulary), config.word_dim, config.embed_dim, config.gru_layers
        )
        self.similarity_kind = config.similarity
        self.attention_lambda = config.attention_lambda
        self.aggregation = config.aggregation
        self.lse_lambda = config.lse_lambda
        self.register_buffer(
            FINGERPRINT_BUFFER,
            torch.tensor([len(vocabulary), vocabulary.fingerprint()], dtype=torch.int64),
        )
        self.register_load_state_dict_pre_hook(_refuse_other_vocabulary)

    def encode_regions(self, region_features: torch.Tensor) -> torch.Tensor:
        """(B, K, feature_dim) -> (B, K, embed_dim) unit region features."""
        return self.region_encoder(region_features)

    def encode_captions(
        self, token_ids: torch.Tensor, lengths: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L) ids, (B,) lengths -> (unit word features (B, L, d), word mask (B, L) bool)."""
        positions = torch.arange(token_ids.shape[1], device=token_ids.device)
        mask = positions[None, :] < lengths.to(token_ids.device)[:, None]
        return self.caption_encoder(token_ids, lengths), mask

    def similarity(
        self, regions: torch.Tensor, words: torch.Tensor, word_mask: torch.Tensor
    ) -> torch.Tensor:
        """(N, K, d) regions, (M, L, d) words, (M, L) mask -> (N, M) scores in [-1, 1]."""
        regions, words = regions.float(), words.float()  # exact scores under mixed precision
        if self.similarity_kind == "global":
            return global_similarity(regions, words, word_mask)
        return scan_t2i_similarity(
            regions, words, word_mask, self.attention_lambda, self.aggregation, self.lse_lambda
        )


def _refuse_other_vocabulary(
    module, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
) -> None:
    key = prefix + FINGERPRINT_BUFFER
    if key not in state_dict:
        return  # strict loading reports the missing key itself
    mine, theirs = getattr(module, FINGERPRINT_BUFFER), state_dict[key]
    if theirs.shape != mine.shape or not torch.equal(theirs.to(mine.device), mine):
        error_msgs.append(
            f"the weights were trained with another caption vocabulary ({int(theirs[0])} tokens, "
            f"fingerprint {int(theirs[1])}; this build has {int(mine[0])}, {int(mine[1])}): "
            "rebuild with the same training captions and min_word_count"
        )
