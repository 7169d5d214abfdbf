"""Decoding the images of one split's pairs into tensors, each distinct image once."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from tasks.base import DataError
from tasks.common.image_headers import first_line
from tasks.common.image_loading import load_image_uint8
from tasks.multiview.pairs import ViewPair


@dataclass
class ViewPairSplit:
    """One split as loaded: each distinct image decoded once, pairs as indices into them.

    images: (N, 3, S, S) uint8, image i read from image_paths[i]; view_a, view_b: (P,) long
    indices into images; pair_labels: (P,) long in {0, 1}; pair_ids, pair_objects,
    pair_classes: P strings in pair order (the object and class of each pair's view_a; a
    pair's own id stands in where the dataset does not say).
    """

    image_paths: list[str]
    images: torch.Tensor
    view_a: torch.Tensor
    view_b: torch.Tensor
    pair_labels: torch.Tensor
    pair_ids: list[str]
    pair_objects: list[str]
    pair_classes: list[str]

    @property
    def positives(self) -> torch.Tensor:
        """(P,) bool: which pairs show the same object."""
        return self.pair_labels == 1

    def first_positive_per_object(self) -> torch.Tensor:
        """(Q,) long: indices of each object's first positive pair (retrieval targets: a second
        positive of the same object would be a correct answer counted as wrong)."""
        seen: set[str] = set()
        chosen = []
        for index, (label, item) in enumerate(zip(self.pair_labels.tolist(), self.pair_objects)):
            if label == 1 and item not in seen:
                seen.add(item)
                chosen.append(index)
        return torch.tensor(chosen, dtype=torch.long)


def load_split(root: Path, pairs: list[ViewPair], image_size: int) -> ViewPairSplit:
    """Decode the images of one split's pairs once each into uint8 tensors.

    A file that fails to decode raises DataError naming it.
    """
    index_of: dict[str, int] = {}
    for pair in pairs:
        index_of.setdefault(pair.view_a, len(index_of))
        index_of.setdefault(pair.view_b, len(index_of))
    images = torch.empty((len(index_of), 3, image_size, image_size), dtype=torch.uint8)
    for relative, index in index_of.items():
        path = Path(root) / relative
        try:
            images[index] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace the file"
            ) from None
    objects = [pair.object_a or pair.pair_id for pair in pairs]
    return ViewPairSplit(
        image_paths=list(index_of),
        images=images,
        view_a=torch.tensor([index_of[pair.view_a] for pair in pairs], dtype=torch.long),
        view_b=torch.tensor([index_of[pair.view_b] for pair in pairs], dtype=torch.long),
        pair_labels=torch.tensor([pair.label for pair in pairs], dtype=torch.long),
        pair_ids=[pair.pair_id for pair in pairs],
        pair_objects=objects,
        pair_classes=[pair.class_a or item for pair, item in zip(pairs, objects)],
    )
