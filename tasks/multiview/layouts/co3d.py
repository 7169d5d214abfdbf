"""CO3D v2, Common Objects in 3D (facebookresearch/co3d, README "Dataset format").

Layout under the root:
    <category>/<sequence_name>/images/frameNNNNNN.jpg
    <category>/set_lists/set_lists_<subset>.json
    <category>/frame_annotations.jgz, sequence_annotations.jgz (not needed here)
A set list is {"train": [[sequence_name, frame_number, image_path], ...], "val": [...],
"test": [...]}, image_path relative to the root (`apple/110_13051_23361/images/frame000001.jpg`).
An object is a sequence (one video around one object, `<category>/<sequence_name>`); its
class is the category. The split is the dataset's few-view dev set list,
`set_lists_fewview_dev.json`, whose train and test hold different sequences (train sequences
vs dev sequences). The many-view set lists split the frames of one sequence, and
`set_lists_fewview_train.json` lists its train frames under test too (co3d issue #49): either
would put one object in two splits, so they are not used. Without any fewview_dev set list
(e.g. the single-sequence subset) the sequences on disk are used and the split is carved by
sequence.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from pathlib import Path
from typing import Any

from tasks.multiview.layouts.listing import file_names, is_image_name, natural_key, subdirectories
from tasks.multiview.objects import UNSPLIT, LayoutScan, ViewedObject

LAYOUT = "CO3D v2 (<category>/<sequence>/images/frameNNNNNN.jpg, <category>/set_lists/)"
SET_LIST_NAME = "set_lists_fewview_dev.json"
SET_LIST_SPLITS = ("train", "val", "test")
CATEGORY_MARKERS = ("set_lists", "frame_annotations.jgz", "sequence_annotations.jgz")
NOT_SEQUENCES = ("set_lists", "eval_batches")
FRAME_NAME = re.compile(r"^frame\d+\.(jpe?g|png)$", re.IGNORECASE)
SEQUENCES_PROBED = 3  # sequences looked into per folder when detecting the layout


def _has_frame_sequences(category: Path) -> bool:
    sequences = [path for path in subdirectories(category) if path.name not in NOT_SEQUENCES]
    return any(
        any(FRAME_NAME.match(name) for name in file_names(sequence / "images"))
        for sequence in sequences[:SEQUENCES_PROBED]
    )


def _is_category(path: Path) -> bool:
    return any((path / marker).exists() for marker in CATEGORY_MARKERS) or _has_frame_sequences(path)


def looks_like(root: Path) -> bool:
    """True when a folder under root has CO3D's per-category files or frameNNNNNN sequences."""
    return any(_is_category(path) for path in subdirectories(root))


def read(root: Path) -> LayoutScan:
    """The sequences the set lists name (or, without set lists, those on disk), as objects."""
    categories = [path for path in subdirectories(root) if _is_category(path)]
    listed = [category for category in categories if (category / "set_lists" / SET_LIST_NAME).is_file()]
    scan = LayoutScan(layout=LAYOUT, root=root)
    if listed:
        _read_set_lists(root, categories, scan)
    else:
        _read_sequences_on_disk(categories, scan)
    return scan


class _ExistingFiles:
    """Which files exist, one directory listing per folder (set lists name ~10^5 frames)."""

    def __init__(self, root: Path):
        self.root = root
        self.listings: dict[str, set[str]] = {}

    def __contains__(self, relative: str) -> bool:
        folder, _, name = relative.rpartition("/")
        if folder not in self.listings:
            self.listings[folder] = set(file_names(self.root / folder))
        return name in self.listings[folder]


def _entry_fields(entry: Any) -> tuple[str, int, str] | None:
    """(sequence_name, frame_number, image_path) of a well-formed set-list entry, else None."""
    if not isinstance(entry, (list, tuple)) or len(entry) != 3:
        return None
    sequence, frame, image = entry
    if not isinstance(sequence, str) or not isinstance(image, str) or isinstance(frame, bool):
        return None
    if not isinstance(frame, int):
        return None
    return sequence, frame, image


def _frame_order(view: tuple[int, str]) -> tuple:
    frame_number, image = view
    return frame_number, natural_key(image)


def _read_set_lists(root: Path, categories: list[Path], scan: LayoutScan) -> None:
    existing = _ExistingFiles(root)
    frames: dict[str, dict[str, list[tuple[int, str]]]] = {
        split: defaultdict(list) for split in SET_LIST_SPLITS
    }
    listed_sequences: set[str] = set()
    on_disk = 0
    for category in categories:
        path = category / "set_lists" / SET_LIST_NAME
        on_disk_here = {p.name for p in subdirectories(category) if p.name not in NOT_SEQUENCES}
        on_disk += len(on_disk_here)
        if not path.is_file():
            scan.problems.append(
                f"{path}: missing, though other categories have it; add it (it ships in the "
                f"category's download) or remove the folder {category.name}/"
            )
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as error:
            scan.problems.append(f"{path}: unreadable set list ({error}); download it again")
            continue
        if not isinstance(content, dict) or not isinstance(content.get("train"), list):
            scan.problems.append(
                f"{path}: not a CO3D set list ({{\"train\": [[sequence_name, frame_number, "
                "image_path], ...], \"val\": ..., \"test\": ...}); download it again"
            )
            continue
        for split in SET_LIST_SPLITS:
            entries = content.get(split) or []
            if not isinstance(entries, list):
                scan.problems.append(f"{path}: {split} is not a list of frames; download it again")
                continue
            for index, entry in enumerate(entries):
                fields = _entry_fields(entry)
                if fields is None:
                    scan.problems.append(
                        f"{path}: {split} entry {index} is {str(entry)[:80]}, not "
                        "[sequence_name, frame_number, image_path]; download the set list again"
                    )
                    continue
                sequence, frame, image = fields
                if not image.startswith(f"{category.name}/{sequence}/"):
                    scan.problems.append(
                        f"{path}: {split} entry {index} names {image}, outside its sequence "
                        f"folder {category.name}/{sequence}/; download the set list again"
                    )
                    continue
                if image not in existing:
                    scan.problems.append(
                        f"{path}: {split} entry {index} (sequence {sequence}, frame {frame}) names "
                        f"{image}, which does not exist; unpack the category's image files"
                    )
                    continue
                key = f"{category.name}/{sequence}"
                frames[split][key].append((frame, image))
                listed_sequences.add(key)
    for split in SET_LIST_SPLITS:
        if not frames[split]:
            continue  # CO3D's fewview_dev has no val frames: val is carved from train
        scan.objects[split] = [
            ViewedObject(
                key=key,
                class_name=key.split("/", 1)[0],
                views=tuple(image for _, image in sorted(views, key=_frame_order)),
            )
            for key, views in sorted(frames[split].items())
        ]
    plural = "category" if len(categories) == 1 else "categories"
    scan.split_source = f"the dataset's set lists {SET_LIST_NAME} of {len(categories)} {plural}"
    left_out = on_disk - len(listed_sequences)
    if left_out > 0:
        scan.sources.append(f"left out {left_out} sequence(s) on disk that {SET_LIST_NAME} does not list")


def _read_sequences_on_disk(categories: list[Path], scan: LayoutScan) -> None:
    objects: list[ViewedObject] = []
    for category in categories:
        for sequence in subdirectories(category):
            if sequence.name in NOT_SEQUENCES:
                continue
            images = [name for name in file_names(sequence / "images") if is_image_name(name)]
            if not images:
                scan.problems.append(
                    f"{sequence}: no images/frameNNNNNN.jpg; unpack the sequence's images or "
                    "remove the folder"
                )
                continue
            objects.append(
                ViewedObject(
                    key=f"{category.name}/{sequence.name}",
                    class_name=category.name,
                    views=tuple(
                        f"{category.name}/{sequence.name}/images/{name}"
                        for name in sorted(images, key=natural_key)
                    ),
                )
            )
    scan.objects[UNSPLIT] = objects
    scan.split_source = f"no {SET_LIST_NAME} in any category, so the sequences are carved"
