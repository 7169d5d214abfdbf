"""How a training epoch draws image-caption pairs.

Each epoch visits every training image exactly once, in a fresh random order, paired with one of
its 5 captions chosen at random. So no image appears twice in a batch: two captions of the same
image in one batch would be false in-batch negatives for InfoNCE. Over epochs every caption gets
used. The order and caption choice come from a generator seeded with `seed + epoch`, so a trial
is reproducible from its config alone.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import DataLoader, Dataset, Sampler


class OneCaptionPerImageSampler(Sampler[int]):
    """Yields caption row indices: each image once per epoch, with one random caption of it."""

    def __init__(self, num_images: int, captions_per_image: int, seed: int):
        self.num_images = num_images
        self.captions_per_image = captions_per_image
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Pin the next pass to `epoch` (otherwise each pass takes the next epoch)."""
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_images

    def __iter__(self) -> Iterator[int]:
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        self.epoch += 1
        image_order = torch.randperm(self.num_images, generator=generator)
        caption_choice = torch.randint(
            self.captions_per_image, (self.num_images,), generator=generator
        )
        return iter((image_order * self.captions_per_image + caption_choice).tolist())


class ImageCaptionPairs(Dataset):
    """Caption row j -> (image uint8 (3, S, S), input_ids (L,), attention_mask (L,))."""

    def __init__(
        self,
        images: torch.Tensor,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        caption_image_index: torch.Tensor,
    ):
        self.images = images
        self.input_ids = input_ids
        self.attention_mask = attention_mask
        self.caption_image_index = caption_image_index

    def __len__(self) -> int:
        return len(self.input_ids)

    def __getitem__(self, caption_row: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        image = self.images[self.caption_image_index[caption_row]]
        return image, self.input_ids[caption_row], self.attention_mask[caption_row]


def training_batches(
    pairs: ImageCaptionPairs,
    num_images: int,
    captions_per_image: int,
    batch_size: int,
    seed: int,
    num_workers: int = 0,
) -> DataLoader:
    """A re-iterable DataLoader of (images, input_ids, attention_mask) batches, one pass per epoch.

    The last partial batch is dropped when there are at least 2 full batches (a tiny final batch
    gives InfoNCE almost no negatives); otherwise the whole split is kept.
    """
    sampler = OneCaptionPerImageSampler(num_images, captions_per_image, seed)
    return DataLoader(
        pairs,
        batch_size=batch_size,
        sampler=sampler,
        drop_last=num_images >= 2 * batch_size,
        num_workers=num_workers,
        persistent_workers=False,
    )
