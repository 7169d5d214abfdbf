"""A CUB-200-2011 dataset as the cub_attributes task reads it: its text files cross-checked,
every problem listed, label leaks found, and the report `orchestrate data --check` prints.

Files under the dataset folder (layout.py finds it, also one level down in an unpacked tarball):
    images.txt                             `<image_id> <relative path under images/>`
    train_test_split.txt                   `<image_id> <is_training_image>` (1 train, 0 test)
    image_class_labels.txt                 `<image_id> <class_id>`
    classes.txt                            `<class_id> <name>`
    attributes/image_attribute_labels.txt  `<image_id> <attribute_id> <is_present> <certainty_id> <time>`
    images/                                the photos, e.g. images/001.Black_footed_Albatross/....jpg
plus the attribute names file (layout.py). How the attribute file is parsed and cached is in
attribute_labels.py; the val split in splits.py; leaks in leaks.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.base import DataReport
from tasks.common.data_problems import ProblemList
from tasks.cub_attributes.attribute_labels import (
    AttributeLabelLines,
    label_matrices,
    read_attribute_label_lines,
)
from tasks.cub_attributes.id_tables import id_mismatch, integer_values, read_id_table
from tasks.cub_attributes.layout import DATASET_FOLDER, CubLayout, find_layout
from tasks.cub_attributes.leaks import class_level_attribute_leak
from tasks.cub_attributes.model_inputs import first_line
from tasks.cub_attributes.splits import SPLITS, split_rows

IMAGES_FILE = "images.txt"
SPLIT_FILE = "train_test_split.txt"
LABELS_FILE = "image_class_labels.txt"
CLASSES_FILE = "classes.txt"
ATTRIBUTE_LABELS_FILE = "attributes/image_attribute_labels.txt"
IMAGES_DIR = "images"
REQUIRED_FILES = {
    IMAGES_FILE: "'<image_id> <path>' lines",
    SPLIT_FILE: "'<image_id> <is_training_image>' lines",
    LABELS_FILE: "'<image_id> <class_id>' lines",
    CLASSES_FILE: "'<class_id> <name>' lines",
    ATTRIBUTE_LABELS_FILE: "'<image_id> <attribute_id> <is_present> <certainty_id> <time>' lines",
}
UNIT = "images"


@dataclass
class CubAnnotations:
    """Everything the text files say, one row per image in ascending image id.

    root: the dataset folder (images under root/images); image_ids: (N,) ids; paths: N paths
    relative to images/; is_training: (N,) bool; labels: (N,) class indices 0..C-1 (classes in
    ascending class id); class_names: C names; is_present: (N, A) uint8 0/1; certainty: (N, A)
    uint8 certainty ids 1..4; attribute_names: A names (from the names file, else `attribute_<id>`).
    """

    root: Path
    image_ids: np.ndarray
    paths: list[str]
    is_training: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    is_present: np.ndarray
    certainty: np.ndarray
    attribute_names: list[str]

    @property
    def images_dir(self) -> Path:
        return self.root / IMAGES_DIR

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names)

    def split_rows(self, split: str, val_fraction: float, seed: int) -> np.ndarray:
        """Rows of "train", "val" (a per-class share of the training images) or "test"."""
        return split_rows(self.is_training, self.labels, split, val_fraction, seed)


@dataclass
class IdTables:
    """The four id tables as read: image id -> path, -> is_training (0/1), -> class id; class id -> name."""

    image_paths: dict[int, str]
    is_training: dict[int, int]
    class_ids: dict[int, int]
    classes: dict[int, str]


def read_id_tables(paths: dict[str, Path], problems: ProblemList) -> IdTables:
    """Read images.txt, train_test_split.txt, image_class_labels.txt and classes.txt, adding every
    malformed line, id disagreement and unknown value to `problems`."""

    def table(name: str, value_name: str) -> dict[int, str]:
        values, found = read_id_table(paths[name], value_name)
        for line in found:
            problems.add(line)
        return values

    image_paths = table(IMAGES_FILE, "relative image path")
    split_table = table(SPLIT_FILE, "is_training_image")
    labels_table = table(LABELS_FILE, "class_id")
    classes = table(CLASSES_FILE, "class name")
    for name, values in ((SPLIT_FILE, split_table), (LABELS_FILE, labels_table)):
        mismatch = id_mismatch(paths[name], set(values), set(image_paths), IMAGES_FILE)
        if mismatch and image_paths:
            problems.add(mismatch)
    is_training, found = integer_values(paths[SPLIT_FILE], split_table, {0, 1}, "0 or 1")
    class_ids, found_labels = integer_values(
        paths[LABELS_FILE], labels_table, set(classes), f"a class id of {CLASSES_FILE}"
    )
    for line in found + found_labels:
        problems.add(line)
    return IdTables(image_paths, is_training, class_ids, classes)


def read_tables(layout: CubLayout, problems: ProblemList, sources: list[str], use_cache: bool) -> CubAnnotations | None:
    """Read and cross-check every text file; None when there is any problem."""
    root = layout.root
    paths = {name: root / name for name in REQUIRED_FILES}
    for name, what in REQUIRED_FILES.items():
        if not paths[name].is_file():
            problems.add(f"{paths[name]}: missing; add the CUB-200-2011 file with {what}")
    if problems:
        return None
    tables = read_id_tables(paths, problems)
    names = table_of_names(layout, problems)
    label_lines = read_attribute_label_lines(paths[ATTRIBUTE_LABELS_FILE], use_cache=use_cache)
    for line in label_lines.problems:
        problems.add(line)
    sources.append(attribute_source(layout, paths[ATTRIBUTE_LABELS_FILE], label_lines))
    if problems or not tables.image_paths:
        return None
    image_ids = sorted(tables.image_paths)
    sorted_ids = np.asarray(image_ids, dtype=np.int64)
    is_present, certainty, found = label_matrices(
        label_lines, paths[ATTRIBUTE_LABELS_FILE], sorted_ids, max(names) if names else None
    )
    for line in found:
        problems.add(line)
    for wanted, word in ((1, "training"), (0, "test")):
        if wanted not in tables.is_training.values():
            problems.add(f"{paths[SPLIT_FILE]}: no {word} image (is_training_image {wanted}); CUB needs both splits")
    if problems:
        return None
    class_order = sorted(tables.classes)
    class_index = {class_id: index for index, class_id in enumerate(class_order)}
    return CubAnnotations(
        root=root,
        image_ids=sorted_ids,
        paths=[tables.image_paths[i] for i in image_ids],
        is_training=np.asarray([tables.is_training[i] == 1 for i in image_ids]),
        labels=np.asarray([class_index[tables.class_ids[i]] for i in image_ids], dtype=np.int64),
        class_names=[tables.classes[c] for c in class_order],
        is_present=is_present,
        certainty=certainty,
        attribute_names=[(names or {}).get(i + 1, f"attribute_{i + 1}") for i in range(is_present.shape[1])],
    )


def table_of_names(layout: CubLayout, problems: ProblemList) -> dict[int, str] | None:
    if layout.names_file is None:
        return None
    names, found = read_id_table(layout.names_file, "attribute name")
    for line in found:
        problems.add(line)
    return names or None


def attribute_source(layout: CubLayout, path: Path, lines: AttributeLabelLines) -> str:
    how = "read from the cache of its parse" if lines.from_cache else "parsed"
    cached = f"; cache {lines.cache_file}" if lines.cache_file else "; not cached"
    return f"attribute labels: {layout.relative(path)} ({len(lines.image_id)} lines, {how}{cached})"


def check_images(annotations: CubAnnotations, problems: ProblemList) -> None:
    """Every image listed in images.txt exists under images/ and opens (header only)."""
    images_dir = annotations.images_dir
    if not images_dir.is_dir():
        problems.add(f"{images_dir}: image folder missing; unpack the dataset's images there")
        return
    for relative in annotations.paths:
        path = images_dir / relative
        if not path.is_file():
            problems.add(f"{path}: listed in {IMAGES_FILE} but missing; add the image or remove its lines")
            continue
        try:
            with Image.open(path):
                pass
        except Exception as error:  # PIL raises several types for unreadable files
            problems.add(f"{path}: unreadable image ({first_line(error)}); replace it or remove its lines")


def split_source(annotations: CubAnnotations, counts: dict[str, int], val_fraction: float, seed: int) -> str:
    training, test = int(annotations.is_training.sum()), int((~annotations.is_training).sum())
    return (
        f"split: {SPLIT_FILE} ({training} training / {test} test images); val = {counts['val']} of the "
        f"training images ({val_fraction:.0%} of each class, val_fraction {val_fraction}, "
        f"val_split_seed {seed}), train keeps {counts['train']}"
    )


def read_dataset(data_dir: Path, use_cache: bool = True) -> tuple[CubLayout | None, CubAnnotations | None, ProblemList, list[str]]:
    """Find and read the text files under data_dir: (layout, annotations, problems, sources).

    annotations is None when there is any problem; nothing is raised for problems in the data.
    """
    problems = ProblemList()
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        problems.add(
            f"{data_dir}: missing or empty; put CUB-200-2011 there (the unpacked CUB_200_2011.tgz) or run the demo"
        )
        return None, None, problems, []
    layout = find_layout(data_dir)
    if not any((layout.root / name).is_file() for name in REQUIRED_FILES):
        problems.add(
            f"{data_dir}: no CUB-200-2011 files here nor in {data_dir / DATASET_FOLDER}; point at the "
            f"unpacked CUB_200_2011.tgz or at its {DATASET_FOLDER}/ folder"
        )
        return None, None, problems, []
    sources = list(layout.sources)
    annotations = read_tables(layout, problems, sources, use_cache)
    return layout, annotations, problems, sources


def inspect_cub(
    data_dir: Path, val_fraction: float, seed: int, use_cache: bool = True
) -> tuple[CubAnnotations | None, DataReport]:
    """Read and check the dataset under data_dir: (annotations or None, the report with every
    problem, the images per split with val carved by val_fraction and seed, and label leaks).

    Cheap: image headers are opened, no pixels decoded. Never raises for problems in the data.
    """
    layout, annotations, problems, sources = read_dataset(Path(data_dir), use_cache)
    report = DataReport(
        layout=layout.name if layout else "not recognised", unit=UNIT, sources=sources, problems=problems.lines
    )
    if annotations is None:
        return None, report
    check_images(annotations, problems)
    report.splits = {s: len(annotations.split_rows(s, val_fraction, seed)) for s in SPLITS}
    sources.append(split_source(annotations, report.splits, val_fraction, seed))
    leak = class_level_attribute_leak(
        annotations.is_present, annotations.labels, layout.relative(layout.root / ATTRIBUTE_LABELS_FILE)
    )
    report.leaks = [leak] if leak else []
    return annotations, report


def read_annotations(data_dir: Path, use_cache: bool = True) -> CubAnnotations:
    """The annotations for a trial; DataError (the first problem and a count) when the text
    files have problems. Images are not opened here (decoding names a bad one); label leaks
    were refused or allowed by the sweep's check."""
    _, annotations, problems, _ = read_dataset(Path(data_dir), use_cache)
    DataReport(layout="", problems=problems.lines).raise_if_unusable()
    return annotations
