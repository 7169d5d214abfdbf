"""A shuffled pass over a dataset per epoch whose order depends on (seed, epoch) alone.

torch's `shuffle=True` draws each epoch's order from one generator that advances as epochs are
iterated, so a trial resumed from a checkpoint at epoch k would replay epoch 0's order. Here
the training loop names the epoch (`set_epoch`), and a resumed trial draws what it would have
drawn had it never stopped.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A generator seeded from (seed, epoch); distinct seeds never share an epoch's stream."""
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


class EpochShuffleSampler(Sampler[int]):
    """Yields 0..count-1 once per epoch, in an order drawn from (seed, epoch)."""

    def __init__(self, count: int, seed: int):
        self.count = count
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pin the next pass to `epoch` (otherwise each pass takes the next epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.count

    def __iter__(self) -> Iterator[int]:
        order = torch.randperm(self.count, generator=epoch_generator(self.seed, self.epoch))
        self.epoch += 1
        return iter(order.tolist())
