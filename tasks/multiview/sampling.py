"""How a training epoch is cut into batches of positive pairs.

Only positive pairs train: pair i's two views are each other's positive and the other pairs of
the batch are its negatives. So that a negative is never the same object, an epoch takes one
positive pair per object (object k's pairs in turn, epoch after epoch). So that a chosen share
of those negatives are hard, objects are dealt in same-class groups of
1 + round(share x (batch_size - 1)): with share 0 every group is one object and batches are
random; with share s about s of each pair's in-batch negatives share its class, as far as
class sizes allow. Everything is drawn from `seed + epoch`: a trial is reproducible from its
config alone.
"""

from __future__ import annotations

import random
from collections import defaultdict
from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def group_size(same_class_share: float, batch_size: int) -> int:
    """Objects of one class dealt together so that `same_class_share` of negatives share it."""
    return 1 + round(same_class_share * (batch_size - 1))


def keeps_last_partial_batch(count: int, batch_size: int) -> bool:
    """The last partial batch is dropped when there are at least 2 full batches (a tiny final
    batch gives InfoNCE almost no negatives) or when it would hold a single pair (no negative
    at all); otherwise the whole split is kept."""
    return not (count >= 2 * batch_size or count % batch_size == 1)


class ObjectBatchSampler(Sampler[list[int]]):
    """Yields batches of pair indices, one positive pair per object per epoch (see module doc).

    pair_objects, pair_classes: per positive pair, its object and its class (any hashable).
    """

    def __init__(
        self,
        pair_objects: list[str],
        pair_classes: list[str],
        batch_size: int,
        same_class_share: float,
        seed: int,
    ):
        self.pairs_of: dict[str, list[int]] = defaultdict(list)
        self.class_of: dict[str, str] = {}
        for index, (item, class_name) in enumerate(zip(pair_objects, pair_classes)):
            self.pairs_of[item].append(index)
            self.class_of[item] = class_name
        self.batch_size = batch_size
        self.group = group_size(same_class_share, batch_size)
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pin the next pass to `epoch` (otherwise each pass takes the next epoch)."""
        self.epoch = epoch

    @property
    def objects(self) -> int:
        return len(self.pairs_of)

    def __len__(self) -> int:
        full, rest = divmod(self.objects, self.batch_size)
        return full + (1 if rest and keeps_last_partial_batch(self.objects, self.batch_size) else 0)

    def epoch_order(self, epoch: int) -> list[int]:
        """The pair indices of one epoch, in batch order (one pair per object)."""
        rng = random.Random(self.seed * 1_000_003 + epoch)
        by_class: dict[str, list[str]] = defaultdict(list)
        for item in self.pairs_of:
            by_class[self.class_of[item]].append(item)
        groups: list[list[str]] = []
        for class_name in sorted(by_class):
            members = by_class[class_name]
            rng.shuffle(members)
            groups += [members[start : start + self.group] for start in range(0, len(members), self.group)]
        rng.shuffle(groups)
        return [
            self.pairs_of[item][epoch % len(self.pairs_of[item])]
            for members in groups
            for item in members
        ]

    def __iter__(self) -> Iterator[list[int]]:
        order = self.epoch_order(self.epoch)
        self.epoch += 1
        batches = [order[start : start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        return iter(batches[: len(self)])


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
    pairs: PositivePairs,
    pair_objects: list[str],
    pair_classes: list[str],
    batch_size: int,
    same_class_share: float,
    seed: int,
    num_workers: int = 0,
) -> DataLoader:
    """A re-iterable DataLoader of (view_a images, view_b images) batches, one pass per epoch."""
    sampler = ObjectBatchSampler(pair_objects, pair_classes, batch_size, same_class_share, seed)
    return DataLoader(pairs, batch_sampler=sampler, num_workers=num_workers, persistent_workers=False)
