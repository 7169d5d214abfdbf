"""Where a Flickr8k split comes from when no Karpathy json is there: the published split files,
or, for a download without any (Kaggle's), a split generated from the file names.

Published split files (Flickr8k_text.zip): one image file name per line,
    Flickr_8k.trainImages.txt (6000), Flickr_8k.devImages.txt (1000), Flickr_8k.testImages.txt (1000).
Generated split: images ordered by the SHA-1 of their file name; the first `held_out` go to
test, the next `held_out` to val, the rest to train, with held_out = min(1000, round(N / 8))
(Flickr8k's own proportions: 6000/1000/1000 of 8000). It depends only on the set of names, so
every trial, machine and rerun gets the same split, and adding an image moves few others.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

SPLITS = ("train", "val", "test")
SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
MAX_HELD_OUT = 1000
HELD_OUT_SHARE = 1 / 8


@dataclass
class SplitList:
    """split -> image file names in file order, and for each name the file:line that listed it."""

    split_images: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in SPLITS})
    origin: dict[tuple[str, str], str] = field(default_factory=dict)  # (split, name) -> "file:line"
    problems: list[str] = field(default_factory=list)


def read_split_files(paths: dict[str, Path | None]) -> SplitList:
    """Read the three split files (split -> path, None when absent); every problem is listed:
    a missing or empty file, and a name listed twice in one file."""
    result = SplitList()
    for split in SPLITS:
        path = paths.get(split)
        if path is None:
            result.problems.append(
                f"{SPLIT_FILES[split]}: missing beside the other split files; add it (one image "
                "file name per line, from Flickr8k_text.zip) or remove all three to use a generated split"
            )
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError:
            result.problems.append(f"{path}: not UTF-8 text; save it as UTF-8")
            continue
        seen: dict[str, int] = {}
        for line_number, line in enumerate(lines, start=1):
            name = line.strip()
            if not name:
                continue
            if name in seen:
                result.problems.append(
                    f"{path}:{line_number}: {name} already listed on line {seen[name]}; delete one"
                )
                continue
            seen[name] = line_number
            result.split_images[split].append(name)
            result.origin[(split, name)] = f"{path}:{line_number}"
        if not seen:
            result.problems.append(f"{path}: lists no image; add one image file name per line")
    return result


def held_out_count(num_images: int) -> int:
    """Images each of val and test receive in a generated split."""
    return min(MAX_HELD_OUT, max(1, round(num_images * HELD_OUT_SHARE)))


def generated_split(names: list[str]) -> dict[str, list[str]]:
    """A deterministic train/val/test split of `names` (see the module docstring); each split
    sorted by name. Needs at least 3 names."""
    by_hash = sorted(set(names), key=lambda name: hashlib.sha1(name.encode("utf-8")).hexdigest())
    held_out = held_out_count(len(by_hash))
    return {
        "train": sorted(by_hash[2 * held_out :]),
        "val": sorted(by_hash[held_out : 2 * held_out]),
        "test": sorted(by_hash[:held_out]),
    }
