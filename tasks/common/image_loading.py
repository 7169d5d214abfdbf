"""Decoding image files into compact uint8 tensors, and normalising them for a model."""

from __future__ import annotations

from pathlib import Path

import torch
from PIL import Image, ImageOps

# ImageNet statistics: what torchvision's pretrained ResNets expect, and harmless from scratch.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def load_image_uint8(path: Path, image_size: int) -> torch.Tensor:
    """Decode one image file into a (3, image_size, image_size) uint8 RGB tensor.

    The shorter side is resized to image_size and the centre cropped (CLIP-style). Raises the
    PIL/OS error of an unreadable file; callers turn it into their own DataError.
    """
    with Image.open(path) as image:
        # For JPEG, lets the decoder downscale by a power of two: much faster on large photos.
        image.draft("RGB", (image_size, image_size))
        rgb = image.convert("RGB")
    fitted = ImageOps.fit(rgb, (image_size, image_size), method=Image.Resampling.BILINEAR)
    pixels = torch.frombuffer(bytearray(fitted.tobytes()), dtype=torch.uint8)
    return pixels.view(image_size, image_size, 3).permute(2, 0, 1).contiguous()


def normalise_images(images: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) uint8 -> float32 normalised with the ImageNet mean and std."""
    mean = torch.tensor(IMAGENET_MEAN, device=images.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=images.device).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
