"""Training batches: each epoch visits every training image once, with one of its 5 captions.

The pairing and order come from `tasks/common/caption_sampling.py` (no image twice
in a batch, so no false in-batch negatives; seeded by seed + epoch). Region features are read
from the memory-mapped .npy per item, so a multi-GB training split is never loaded whole; a
caption's row is SCAN's `index // im_div` (its image's row, or its own with one row per caption).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from tasks.common.caption_sampling import OneCaptionPerImageSampler


def pad_token_ids(captions: Sequence[Sequence[int]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Token id lists -> ((M, longest) long ids padded with 0, (M,) long lengths)."""
    lengths = torch.tensor([len(ids) for ids in captions], dtype=torch.long)
    longest = int(lengths.max()) if len(captions) else 0
    padded = torch.zeros((len(captions), longest), dtype=torch.long)
    for row, ids in enumerate(captions):
        padded[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return padded, lengths


class RegionCaptionPairs(Dataset):
    """Caption j -> (region features (K, D) float32 of feature row caption_feature_rows[j],
    token ids list of j)."""

    def __init__(
        self,
        features_path: Path,
        caption_ids: Sequence[Sequence[int]],
        caption_feature_rows: torch.Tensor,
    ):
        self.features_path = Path(features_path)
        self.caption_ids = caption_ids
        self.caption_feature_rows = caption_feature_rows
        self._features: np.ndarray | None = None

    def __getstate__(self) -> dict:
        # A worker process maps the file itself; a pickled memmap would copy the whole array.
        return {**self.__dict__, "_features": None}

    @property
    def features(self) -> np.ndarray:
        if self._features is None:
            self._features = np.load(self.features_path, mmap_mode="r")
        return self._features

    def __len__(self) -> int:
        return len(self.caption_ids)

    def __getitem__(self, caption_row: int) -> tuple[torch.Tensor, Sequence[int]]:
        row = int(self.caption_feature_rows[caption_row])
        regions = torch.from_numpy(np.array(self.features[row], dtype=np.float32))
        return regions, self.caption_ids[caption_row]


def collate_pairs(items: list[tuple[torch.Tensor, Sequence[int]]]):
    """-> (regions (B, K, D), token ids (B, L) padded with 0, lengths (B,))."""
    regions = torch.stack([regions for regions, _ in items])
    token_ids, lengths = pad_token_ids([ids for _, ids in items])
    return regions, token_ids, lengths


def training_batches(
    pairs: RegionCaptionPairs,
    num_images: int,
    captions_per_image: int,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
) -> DataLoader:
    """A re-iterable DataLoader of (regions, token_ids, lengths), one pass per epoch.

    The last partial batch is dropped when there are at least 2 full batches (a tiny final
    batch has almost no negatives); otherwise the whole split is kept.
    """
    return DataLoader(
        pairs,
        batch_size=batch_size,
        sampler=OneCaptionPerImageSampler(num_images, captions_per_image, seed),
        collate_fn=collate_pairs,
        drop_last=num_images >= 2 * batch_size,
        num_workers=num_workers,
    )
