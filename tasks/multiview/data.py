"""The multiview dataset as the task uses it: layout found, split by object, paired, checked.

`plan_dataset` detects the layout (detect.py), has its reader list the objects and their views
(layouts/), turns the dataset's own split into train/val/test (splits.py), builds the pairs
(pairs.py) and checks everything a user can get wrong: every problem, and any image or object
in two splits (overlap.py). A manifest of pairs skips the object steps and is used as written.
`check_data` is that plan's report; loading.py decodes the pixels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from tasks.base import DataReport
from tasks.common.data_problems import ProblemList
from tasks.common.image_headers import unreadable_image_reason
from tasks.multiview.config import MultiviewConfig
from tasks.multiview.detect import EXPECTED, detect_layout
from tasks.multiview.layouts import manifest
from tasks.multiview.objects import SPLITS, UNSPLIT, LayoutScan, ViewedObject
from tasks.multiview.overlap import split_overlap
from tasks.multiview.pairs import ViewPair, evaluation_pairs, same_class_share, training_pairs
from tasks.multiview.splits import final_splits, fixed_subset

MIN_OBJECTS_PER_SPLIT = 2  # a negative needs a second object; InfoNCE a second positive
# Headers of every image are read up to this many images (ModelNet40's 147,732 renders: ~9 s of
# CPU); beyond it (CO3D, MVImgNet: millions of frames) only those the pairs use.
MAX_HEADERS_READ = 200_000


@dataclass
class DatasetPlan:
    """What the task trains and evaluates on: the dataset root, each split's pairs, the report."""

    root: Path
    report: DataReport
    pairs: dict[str, list[ViewPair]] = field(default_factory=dict)


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

    read_headers: open image files, header only (every view up to MAX_HEADERS_READ, else the
    views the pairs use); `check_data` does, `build` leaves it to decoding. Never raises for
    problems in the data: they are in the report.
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
        f"{len(objects)}" if split == UNSPLIT else f"{split} {len(objects)}"
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
        asked = config.eval_same_class_negative_share
        if negatives and round(share * negatives) != round(asked * negatives):
            same += f" ({asked:.0%} asked: too few objects share a class)"
        parts.append(f"{split} {positives} positive + {negatives} negative{same}")
    return f"pairs (pair_seed {config.pair_seed}): {'; '.join(parts)}"


def _read_headers(
    scan: LayoutScan,
    splits: dict[str, list[ViewedObject]],
    pairs: dict[str, list[ViewPair]],
    problems: ProblemList,
) -> str:
    """Open every view's header (only the views the pairs use, beyond MAX_HEADERS_READ); each
    unreadable one is a problem. Returns the source line saying which were read."""
    every = sorted({view for split in SPLITS for item in splits[split] for view in item.views})
    if len(every) <= MAX_HEADERS_READ:
        chosen, line = every, f"image headers read: all {len(every)} images"
    else:
        chosen = sorted(
            {view for listed in pairs.values() for pair in listed for view in (pair.view_a, pair.view_b)}
        )
        line = (
            f"image headers read: the {len(chosen)} images the pairs use, of {len(every)} (all are "
            f"read up to {MAX_HEADERS_READ})"
        )
    for relative in chosen:
        reason = unreadable_image_reason(scan.root / relative)
        if reason is not None:
            problems.add(f"{scan.root / relative}: unreadable image ({reason}); replace the file")
    return line


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
        usable[split] = fixed_subset(
            [item for item in splits[split] if len(item.views) >= 2], config.max_objects_per_split
        )
        if len(usable[split]) < MIN_OBJECTS_PER_SPLIT:
            carved = split != "train" and split not in scan.objects
            problems.add(
                f"{scan.root}: split {split} has {len(usable[split])} object(s) with two or more "
                f"views, needs at least {MIN_OBJECTS_PER_SPLIT} (a negative is another object); "
                + (f"add objects or raise {split}_fraction" if carved else "add objects to it")
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
    every_object = [item for split in SPLITS for item in splits[split]]
    sources += [_views_line(every_object), _pairs_line(config, pairs)]
    if config.max_objects_per_split is not None:
        sources.append(
            f"pairs drawn from at most {config.max_objects_per_split} objects per split "
            f"(max_objects_per_split): "
            + ", ".join(f"{split} {len(usable[split])} of {len(splits[split])}" for split in SPLITS)
        )
    if read_headers:
        sources.append(_read_headers(scan, splits, pairs, problems))
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
            for member in (
                (row.split, row.object_a, (row.view_a,)),
                (row.split, row.object_b, (row.view_b,)),
            )
        ]
        objects_line = "objects: named by the object_a/object_b columns"
    else:
        members = [(row.split, None, (row.view_a, row.view_b)) for row in rows]
        objects_line = (
            "objects: not named (no object_a/object_b columns), so splits are checked by image file only"
        )
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
