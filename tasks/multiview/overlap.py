"""The split leak check: no image file and no object may be in two splits.

A model validated on views of objects it trained on (or on the very same image files) scores
what it memorised, not what it learned; a random per-pair split of a multiview set shares both.
The check runs on every split the task uses, generated or read from a manifest.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Iterable, Optional

from tasks.multiview.objects import SPLITS

# (split, object key or None when unknown, the image paths it uses there)
SplitMember = tuple[str, Optional[str], Iterable[str]]


def _shared(members_by_split: dict[str, set[str]]) -> list[tuple[str, list[str]]]:
    """(item, its splits in split order) of every item found in more than one split, sorted.

    One set per split rather than one per item: CO3D lists ~10^6 frames.
    """
    in_splits = [split for split in SPLITS if split in members_by_split]
    shared: set[str] = set()
    for k, first in enumerate(in_splits):
        for second in in_splits[k + 1 :]:
            shared |= members_by_split[first] & members_by_split[second]
    return [
        (item, [split for split in in_splits if item in members_by_split[split]])
        for item in sorted(shared)
    ]


def split_overlap(where: str, members: Iterable[SplitMember]) -> str | None:
    """One line naming an image and/or an object found in two splits, with how many; else None.

    where: what the line starts with (the manifest, or the dataset root and its split source).
    """
    images_by_split: dict[str, set[str]] = defaultdict(set)
    objects_by_split: dict[str, set[str]] = defaultdict(set)
    for split, object_key, images in members:
        images_by_split[split].update(images)
        if object_key is not None:
            objects_by_split[split].add(object_key)
    shared_images, shared_objects = _shared(images_by_split), _shared(objects_by_split)
    if not shared_images and not shared_objects:
        return None
    examples, counts = [], []
    for kind, shared in (("image", shared_images), ("object", shared_objects)):
        if shared:
            item, splits = shared[0]
            examples.append(f"{kind} {item} is in {' and '.join(splits)}")
            counts.append(f"{len(shared)} {kind}{'s' if len(shared) > 1 else ''}")
    return (
        f"{where}: {'; '.join(examples)} ({' and '.join(counts)} in more than one split); "
        "split by object so that no image or object is in two splits"
    )
