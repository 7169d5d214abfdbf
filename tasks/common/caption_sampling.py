"""How an epoch of an image-caption dataset with several captions per image draws its pairs.

Each epoch visits every image exactly once, in a fresh random order, paired with one of its
captions chosen at random. So no image appears twice in a batch: two captions of the same image
in one batch would be false in-batch negatives for a contrastive loss. Over epochs every caption
gets used. The order and caption choice come from a generator seeded with `seed + epoch`, so a
trial is reproducible from its config alone. Captions are stored image-major: caption row
`image * captions_per_image + k` is caption k of that image.
"""

from __future__ import annotations

from typing import Iterator

import torch
from torch.utils.data import Sampler


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
