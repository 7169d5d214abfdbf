"""From the splits a dataset ships to train/val/test, always by object, never by view.

The dataset's own split is used where it has one (MVCNN's train/ and test/ folders, CO3D's set
lists). A split it lacks is carved: test out of everything when there is no split at all, val
out of train. A carve takes, per class, round(fraction x objects) objects (at least 1 when the
class has 2 or more, never all), chosen by a hash of the object key: the same objects whatever
the seed, the order on disk or the other classes, so every trial and every run agrees.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from tasks.multiview.objects import SPLITS, UNSPLIT, ViewedObject

CARVED = "carved by object"


def carve_count(class_size: int, fraction: float) -> int:
    """How many of a class's objects a carve takes."""
    if fraction <= 0 or class_size < 2:
        return 0
    return min(class_size - 1, max(1, round(fraction * class_size)))


def _carve_order(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def fixed_subset(objects: list[ViewedObject], limit: int | None) -> list[ViewedObject]:
    """At most `limit` of the objects, chosen by the carve's hash order; order is kept."""
    if limit is None or len(objects) <= limit:
        return objects
    chosen = {item.key for item in sorted(objects, key=lambda item: _carve_order(item.key))[:limit]}
    return [item for item in objects if item.key in chosen]


def carve(objects: list[ViewedObject], fraction: float) -> tuple[list[ViewedObject], list[ViewedObject]]:
    """(kept, carved): `carve_count` objects of each class move to carved; order is kept."""
    by_class: dict[str, list[ViewedObject]] = defaultdict(list)
    for item in objects:
        by_class[item.class_name].append(item)
    carved_keys: set[str] = set()
    for members in by_class.values():
        ranked = sorted(members, key=lambda item: _carve_order(item.key))
        carved_keys |= {item.key for item in ranked[: carve_count(len(members), fraction)]}
    kept = [item for item in objects if item.key not in carved_keys]
    carved = [item for item in objects if item.key in carved_keys]
    return kept, carved


def final_splits(
    own: dict[str, list[ViewedObject]], val_fraction: float, test_fraction: float
) -> tuple[dict[str, list[ViewedObject]], list[str]]:
    """train/val/test objects from the dataset's own splits, and one line per carve made.

    own: split -> objects as the reader found them ("train", "val", "test", or UNSPLIT).
    Returns every split of SPLITS (possibly empty) and lines such as "val: 20% of each class's
    train objects, carved by object (val_fraction)".
    """
    splits = {split: list(own.get(split, [])) for split in SPLITS}
    notes = []
    if UNSPLIT in own:
        splits["train"], splits["test"] = carve(own[UNSPLIT], test_fraction)
        notes.append(f"test: {test_fraction:.0%} of each class's objects, {CARVED} (test_fraction)")
    elif not splits["test"] and splits["train"]:
        splits["train"], splits["test"] = carve(splits["train"], test_fraction)
        notes.append(f"test: {test_fraction:.0%} of each class's train objects, {CARVED} (test_fraction)")
    if not splits["val"] and splits["train"]:
        splits["train"], splits["val"] = carve(splits["train"], val_fraction)
        notes.append(f"val: {val_fraction:.0%} of each class's train objects, {CARVED} (val_fraction)")
    return splits, notes
