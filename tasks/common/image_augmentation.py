"""Cheap batch image augmentation on uint8 tensors, for training steps.

Kept to label-preserving geometry (mirror, small shift), so that a task's classes stay intact.
Randomness comes from torch's global generator, which the trial loop seeds per trial.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def random_flip_and_shift(images: torch.Tensor, max_shift: int) -> torch.Tensor:
    """Mirror each image left-right with probability 1/2 and shift it by up to max_shift pixels.

    images: (B, C, H, W), any dtype. Each image is shifted by its own (dy, dx) in
    [-max_shift, max_shift], filling the uncovered border by edge replication. Returns a new
    tensor of the same shape and dtype.
    """
    batch, _, height, width = images.shape
    flip = torch.rand(batch, device=images.device) < 0.5
    images = torch.where(flip[:, None, None, None], images.flip(-1), images)
    if max_shift <= 0:
        return images
    padded = F.pad(images.float(), (max_shift,) * 4, mode="replicate").to(images.dtype)
    offsets = torch.randint(0, 2 * max_shift + 1, (batch, 2)).tolist()
    return torch.stack(
        [padded[i, :, dy : dy + height, dx : dx + width] for i, (dy, dx) in enumerate(offsets)]
    )
