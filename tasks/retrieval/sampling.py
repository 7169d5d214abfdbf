"""How a training epoch draws image-caption pairs: each image once, with one of its 5 captions.

The sampling rule (and why: no false in-batch negatives) is in tasks/common/caption_sampling.py.
"""

from __future__ import annotations

import torch
from torch.utils.data import DataLoader, Dataset

from tasks.common.caption_sampling import OneCaptionPerImageSampler


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
