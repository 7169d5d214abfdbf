"""What the model reads of a CUB sample: the decoded image and the attribute vector."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from tasks.base import DataError
from tasks.common.image_loading import load_image_uint8

# Certainty ids 1..4 (index 0 unused) -> weight: not visible 0, guessing 0.5, probably 0.75, definitely 1.
CERTAINTY_WEIGHTS = np.asarray([0.0, 0.0, 0.5, 0.75, 1.0], dtype=np.float32)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def load_images(images_dir: Path, paths: list[str], rows: np.ndarray, image_size: int) -> torch.Tensor:
    """Decode the images of `rows` (paths relative to images_dir) into (len(rows), 3, S, S) uint8.

    Raises DataError naming a file that fails to decode.
    """
    images = torch.empty((len(rows), 3, image_size, image_size), dtype=torch.uint8)
    for position, row in enumerate(rows.tolist()):
        path = Path(images_dir) / paths[row]
        try:
            images[position] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace it or remove its lines"
            ) from None
    return images


def certainty_weights(certainty: np.ndarray) -> np.ndarray:
    """Certainty ids 1..4 -> weights 0 (not visible), 0.5 (guessing), 0.75, 1 (definitely)."""
    return CERTAINTY_WEIGHTS[certainty]


def attribute_vectors(
    is_present: np.ndarray, certainty: np.ndarray, use_certainty: bool, min_certainty: int = 1
) -> torch.Tensor:
    """(N, A) float attribute inputs from (N, A) is_present 0/1 and certainty ids 1..4.

    An attribute counts as present only when annotated present with certainty id >=
    min_certainty; it is then +1, otherwise -1. With use_certainty, each value is scaled by its
    certainty weight, and annotations under min_certainty get weight 0 (no evidence either way),
    as "not visible" does. min_certainty 1 trusts every annotation.
    """
    trusted = certainty >= min_certainty
    signed = np.where((is_present == 1) & trusted, 1.0, -1.0).astype(np.float32)
    if use_certainty:
        signed = signed * certainty_weights(certainty) * trusted
    return torch.from_numpy(np.ascontiguousarray(signed, dtype=np.float32))
