"""What a layout reader hands on: objects, each seen in several image files, grouped by split.

Every dataset layout the task reads (MVCNN renders, CO3D, MVImgNet) comes down to the same
thing: objects of a class, each with two or more views. The readers (tasks/multiview/layouts/)
fill a `LayoutScan`; splitting (splits.py) and pair generation (pairs.py) never look at a
layout again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")
# The split key of a dataset that ships no split at all (MVImgNet; CO3D without set lists).
UNSPLIT = "unsplit"


@dataclass(frozen=True)
class ViewedObject:
    """One object and its views.

    key: unique in the dataset, "<class>/<object>" (e.g. "chair/chair_0001", a CO3D sequence
        "apple/110_13051_23361"); what "the same object" means for splits and pairs.
    class_name: the object's class (ModelNet class, CO3D category, MVImgNet class label).
    views: image paths relative to the dataset root, in the dataset's own view order.
    """

    key: str
    class_name: str
    views: tuple[str, ...]


@dataclass
class LayoutScan:
    """What a layout reader found under a dataset root.

    layout: the layout's name as a user knows it, with its path pattern.
    root: the directory every view path is relative to.
    objects: split -> its objects, for the splits the dataset ships ("train", "val", "test"),
        or {UNSPLIT: objects} when it ships none. An object listed in two splits (a leak the
        overlap check reports) appears in both, each time with that split's views.
    split_source: one line saying where the dataset's own split came from (file or folders).
    sources: further lines on choices the reader made (files ignored, view counts).
    problems: one line per problem found, naming the file and the fix.
    """

    layout: str
    root: Path
    objects: dict[str, list[ViewedObject]] = field(default_factory=dict)
    split_source: str = ""
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
