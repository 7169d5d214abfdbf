"""The multiview dataset as the task uses it: layout found, split by object, pairs, checks, pixels.

`plan_dataset` detects the layout (detect.py), has its reader list the objects and their views
(layouts/), turns the dataset's own split into train/val/test (splits.py), builds the pairs
(pairs.py) and checks everything a user can get wrong: every problem, and any image or object
in two splits (overlap.py). A manifest of pairs skips the object steps and is used as written.
`check_data` is that plan's report; `load_split` decodes the images of one split's pairs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from tasks.base import DataError, DataReport
from tasks.common.data_problems import ProblemList
from tasks.common.image_headers import unreadable_image_reason
from tasks.common.image_loading import load_image_uint8
from tasks.multiview.config import MultiviewConfig
from tasks.multiview.detect import EXPECTED, detect_layout
from tasks.multiview.layouts import manifest
from tasks.multiview.objects import SPLITS, UNSPLIT, LayoutScan, ViewedObject
from tasks.multiview.overlap import split_overlap
from tasks.multiview.pairs import ViewPair, evaluation_pairs, same_class_share, training_pairs
from tasks.multiview.splits import final_splits

MIN_OBJECTS_PER_SPLIT = 2  # a negative needs a second object; InfoNCE a second positive


@dataclass
class DatasetPlan:
    """What the task trains and evaluates on: the dataset root, each split's pairs, the report."""

    root: Path
    report: DataReport
    pairs: dict[str, list[ViewPair]] = field(default_factory=dict)


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


def _missing_or_empty(data_dir: Path) -> DataReport:
    return DataReport(
        layout="none",
        problems=[
            f"{data_dir}: missing or empty; put a multiview dataset there ({EXPECTED}) or write "
            "the demo with: orchestrate data --task multiview --out DIR"
        ],
    )


def plan_dataset(data_dir: Path, config: MultiviewConfig, read_headers: bool = True) -> DatasetPlan:
    """The dataset under data_dir, split and paired as `config` says, with its full report.

    read_headers: open every image the pairs use (header only; `check_data` does, `build`
    leaves it to decoding). Never raises for problems in the data: they are in the report.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        return DatasetPlan(data_dir, _missing_or_empty(data_dir))
    detected = detect_layout(data_dir)
    if detected is None:
        report = DataReport(
            layout="not recognised",
            problems=[f"{data_dir}: no multiview layout recognised; expected {EXPECTED}"],
        )
        return DatasetPlan(data_dir, report)
    if detected.reader is manifest:
        plan = _plan_from_manifest(detected.root, read_headers)
    else:
        plan = _plan_from_objects(detected.reader.read(detected.root), config, read_headers)
    if detected.note:
        plan.report.sources.insert(0, detected.note)
    return plan


def check_data(data_dir: Path) -> DataReport:
    """The report of the dataset under data_dir at the default settings (image headers read)."""
    return plan_dataset(Path(data_dir), MultiviewConfig(), read_headers=True).report


def _own_split_counts(scan: LayoutScan) -> str:
    counts = [
        f"{'no split' if split == UNSPLIT else split} {len(objects)}"
        for split, objects in scan.objects.items()
    ]
    return f"{', '.join(counts)} objects" if counts else "no objects"


def _views_line(objects: list[ViewedObject]) -> str:
    counts = [len(item.views) for item in objects]
    if not counts:
        return "views: none"
    spread = f"{min(counts)}" if min(counts) == max(counts) else f"{min(counts)}-{max(counts)}"
    return f"views: {sum(counts)} images, {spread} per object"


def _pairs_line(config: MultiviewConfig, pairs: dict[str, list[ViewPair]]) -> str:
    parts = [
        f"train {len(pairs['train'])} positive ({config.train_pairs_per_object} per object; an "
        "epoch trains on one per object)"
    ]
    for split in ("val", "test"):
        positives = sum(pair.label for pair in pairs[split])
        negatives = len(pairs[split]) - positives
        share = same_class_share(pairs[split])
        same = "" if share != share else f", {share:.0%} of negatives from the same class"
        parts.append(f"{split} {positives} positive + {negatives} negative{same}")
    return f"pairs (pair_seed {config.pair_seed}): {'; '.join(parts)}"


def _plan_from_objects(scan: LayoutScan, config: MultiviewConfig, read_headers: bool) -> DatasetPlan:
    problems = ProblemList()
    for line in scan.problems:
        problems.add(line)
    splits, carve_notes = final_splits(scan.objects, config.val_fraction, config.test_fraction)
    usable: dict[str, list[ViewedObject]] = {}
    for split in SPLITS:
        for item in splits[split]:
            if len(item.views) < 2:
                problems.add(
                    f"{scan.root / item.views[0]}: the only view of object {item.key} ({split}); a "
                    "positive pair needs two views of one object: add its other views or remove it"
                )
        usable[split] = [item for item in splits[split] if len(item.views) >= 2]
        if len(usable[split]) < MIN_OBJECTS_PER_SPLIT:
            problems.add(
                f"{scan.root}: split {split} has {len(usable[split])} object(s) with two or more "
                f"views, needs at least {MIN_OBJECTS_PER_SPLIT} (a negative is another object); "
                "add objects to it"
            )
    leak = split_overlap(
        f"{scan.root} ({scan.split_source})",
        ((split, item.key, item.views) for split in SPLITS for item in splits[split]),
    )
    pairs = {"train": training_pairs(usable["train"], config.train_pairs_per_object, config.pair_seed)}
    for split in ("val", "test"):
        pairs[split] = (
            evaluation_pairs(
                split,
                usable[split],
                config.eval_pairs_per_object,
                config.eval_same_class_negative_share,
                config.pair_seed,
            )
            if len(usable[split]) >= MIN_OBJECTS_PER_SPLIT
            else []
        )
    sources = [f"split: {scan.split_source} ({_own_split_counts(scan)})", *carve_notes]
    sources += [_views_line([item for split in SPLITS for item in splits[split]]), _pairs_line(config, pairs)]
    if read_headers:
        used = sorted({view for split_pairs in pairs.values() for pair in split_pairs for view in (pair.view_a, pair.view_b)})
        for relative in used:
            reason = unreadable_image_reason(scan.root / relative)
            if reason is not None:
                problems.add(f"{scan.root / relative}: unreadable image ({reason}); replace the file")
        sources.append(f"image headers read: the {len(used)} images these pairs use")
    report = DataReport(
        layout=scan.layout,
        splits={split: len(splits[split]) for split in SPLITS},
        unit="objects",
        sources=sources + scan.sources,
        problems=problems.lines,
        leaks=[leak] if leak else [],
    )
    return DatasetPlan(scan.root, report, pairs)


def _plan_from_manifest(root: Path, read_headers: bool) -> DatasetPlan:
    problems = ProblemList()
    rows, has_objects = manifest.read_manifest(root, problems)
    path = manifest.manifest_path(root)
    if rows:
        manifest.check_split_composition(rows, path, problems)
        manifest.check_image_files(rows, root, path, problems, read_headers)
    if has_objects:
        members = [
            member
            for row in rows
            for member in ((row.split, row.object_a, (row.view_a,)), (row.split, row.object_b, (row.view_b,)))
        ]
        objects_line = "objects: named by the object_a/object_b columns"
    else:
        members = [(row.split, None, (row.view_a, row.view_b)) for row in rows]
        objects_line = "objects: not named (no object_a/object_b columns), so splits are checked by image file only"
    leak = split_overlap(str(path), members)
    pairs = {
        split: [
            ViewPair(row.pair_id, row.view_a, row.view_b, row.pair_label, row.object_a, row.object_b)
            for row in rows
            if row.split == split
        ]
        for split in SPLITS
    }
    report = DataReport(
        layout=manifest.LAYOUT,
        splits={split: len(pairs[split]) for split in SPLITS},
        unit="pairs",
        sources=[f"split: the split column of {path.name}", objects_line],
        problems=problems.lines,
        leaks=[leak] if leak else [],
    )
    return DatasetPlan(root, report, pairs)


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
                f"{path}: cannot decode image ({manifest.first_line(error)}); replace the file"
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
