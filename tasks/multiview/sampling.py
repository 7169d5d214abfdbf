"""How a training epoch draws positive pairs: each once per epoch, in a fresh seeded order.

Only positive pairs (pair_label 1) train: pair i's two views are each other's positive and the
other pairs of the batch are its negatives. The order comes from a generator seeded with
`seed + epoch`, so a trial is reproducible from its config alone.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class EpochShuffleSampler(Sampler[int]):
    """Yields every index of range(count) once per pass, in an order fixed by seed and epoch."""

    def __init__(self, count: int, seed: int):
        self.count = count
        self.seed = seed
        self.epoch = 0

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        return iter(torch.randperm(self.count, generator=generator).tolist())


class PositivePairs(Dataset):
    """Positive pair k -> (view_a image, view_b image), both uint8 (3, S, S)."""

    def __init__(self, images: torch.Tensor, view_a: torch.Tensor, view_b: torch.Tensor):
        self.images = images
        self.view_a = view_a
        self.view_b = view_b

    def __len__(self) -> int:
        return len(self.view_a)

    def __getitem__(self, pair: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[self.view_a[pair]], self.images[self.view_b[pair]]


def training_batches(
    pairs: PositivePairs, batch_size: int, seed: int, num_workers: int = 0
) -> DataLoader:
    """A re-iterable DataLoader of (view_a images, view_b images) batches, one pass per epoch.

    The last partial batch is dropped when there are at least 2 full batches (a tiny final batch
    gives InfoNCE almost no negatives), or when it would hold a single pair (no negative at
    all); otherwise the whole split is kept.
    """
    return DataLoader(
        pairs,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(len(pairs), seed),
        drop_last=len(pairs) >= 2 * batch_size or len(pairs) % batch_size == 1,
        num_workers=num_workers,
        persistent_workers=False,
    )
