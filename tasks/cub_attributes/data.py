"""The CUB-200-2011 on-disk layout: reading the id tables and attributes, checking, splitting.

Layout under data_dir (as distributed in CUB_200_2011.tgz):
    images.txt                           `<image_id> <relative path under images/>`
    train_test_split.txt                 `<image_id> <is_training_image>` (1 train, 0 test)
    image_class_labels.txt               `<image_id> <class_id>`
    classes.txt                          `<class_id> <name>`
    attributes/image_attribute_labels.txt
                                         `<image_id> <attribute_id> <is_present> <certainty_id> <time>`
    attributes/attributes.txt or attributes.txt   `<attribute_id> <name>` (optional)
    images/                              the photos, e.g. images/001.Black_footed_Albatross/....jpg
The official file has a few lines with extra fields; only the first 4 fields are read. An
(image, attribute) pair without a line counts as "not visible" (certainty 1, not present).
CUB has only train and test: "val" is carved out of the training images per class (see
`validation_split`). Any problem raises DataError with one line naming the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from tasks.base import DataError
from tasks.common.image_loading import load_image_uint8

IMAGES_FILE = "images.txt"
SPLIT_FILE = "train_test_split.txt"
LABELS_FILE = "image_class_labels.txt"
CLASSES_FILE = "classes.txt"
ATTRIBUTE_LABELS_FILE = "attributes/image_attribute_labels.txt"
ATTRIBUTE_NAMES_FILES = ("attributes/attributes.txt", "attributes.txt")
IMAGES_DIR = "images"
SPLITS = ("train", "val", "test")

# CUB certainty ids: 1 not visible, 2 guessing, 3 probably, 4 definitely.
CERTAINTY_IDS = (1, 2, 3, 4)
NOT_VISIBLE = 1


@dataclass
class CubAnnotations:
    """Everything the text files say, one row per image in ascending image id.

    image_ids: (N,) ids; paths: N paths relative to images/; is_training: (N,) bool;
    labels: (N,) class indices 0..C-1 (classes in ascending class id); class_names: C names;
    is_present: (N, A) uint8 0/1; certainty: (N, A) uint8 certainty ids 1..4;
    attribute_names: A names (from the names file, else `attribute_<id>`).
    """

    image_ids: np.ndarray
    paths: list[str]
    is_training: np.ndarray
    labels: np.ndarray
    class_names: list[str]
    is_present: np.ndarray
    certainty: np.ndarray
    attribute_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_attributes(self) -> int:
        return len(self.attribute_names)


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _existing_file(data_dir: Path, name: str, what: str) -> Path:
    path = data_dir / name
    if not path.is_file():
        raise DataError(f"{path}: missing; add the CUB-200-2011 file with {what}")
    return path


def read_id_table(path: Path, value_name: str) -> dict[int, str]:
    """A `<id> <value>` file (value may hold spaces) as id -> value; blank lines skipped.

    Raises DataError naming the file and line for a malformed line or a repeated id, and for a
    file without any entry.
    """
    table: dict[int, str] = {}
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            fields = line.split(maxsplit=1)
            if not fields:
                continue
            if len(fields) < 2 or not fields[0].isdigit():
                raise DataError(
                    f"{path}:{line_number}: expected '<id> <{value_name}>'; fix or delete this line"
                )
            identifier = int(fields[0])
            if identifier in table:
                raise DataError(f"{path}:{line_number}: id {identifier} appears twice; keep one line")
            table[identifier] = fields[1].strip()
    if not table:
        raise DataError(f"{path}: empty; it must list one '<id> <{value_name}>' per line")
    return table


def _integer_values(path: Path, table: dict[int, str], allowed: set[int], expected: str) -> dict[int, int]:
    """The table's values as ints, each one of `allowed` (else DataError saying `expected`)."""
    values = {}
    for identifier, text in table.items():
        if not text.isdigit() or int(text) not in allowed:
            raise DataError(
                f"{path}: image {identifier} has value {text!r}, expected {expected}; fix that line"
            )
        values[identifier] = int(text)
    return values


def _same_ids(path: Path, ids: set[int], image_ids: set[int]) -> None:
    if ids != image_ids:
        missing, extra = sorted(image_ids - ids), sorted(ids - image_ids)
        problem = (
            f"lacks image ids {missing[:3]}{'...' if len(missing) > 3 else ''} of {IMAGES_FILE}"
            if missing
            else f"has image ids {extra[:3]}{'...' if len(extra) > 3 else ''} not in {IMAGES_FILE}"
        )
        raise DataError(f"{path}: {problem}; the files must list the same images")


def read_attribute_names(data_dir: Path) -> dict[int, str] | None:
    """attribute id -> name from attributes/attributes.txt or attributes.txt; None if neither."""
    for name in ATTRIBUTE_NAMES_FILES:
        if (data_dir / name).is_file():
            return read_id_table(data_dir / name, "attribute name")
    return None


def read_attribute_labels(
    path: Path, row_of_image: dict[int, int], num_attributes: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """Parse image_attribute_labels.txt into (is_present (N, A) uint8, certainty (N, A) uint8).

    Rows follow `row_of_image` (image id -> row). Only the first 4 fields of a line are read
    (the official file has lines with extra fields). num_attributes: A from the names file, or
    None to take the largest attribute id. Pairs without a line stay "not visible, absent".
    Raises DataError (file:line) on a short or non-numeric line, an unknown image id, an
    attribute id out of range or an is_present / certainty value CUB does not use.
    """
    columns: list[list[int]] = [[], [], [], []]
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            fields = line.split()
            if not fields:
                continue
            try:
                values = [int(field) for field in fields[:4]]
                if len(values) < 4:
                    raise ValueError
            except ValueError:
                raise DataError(
                    f"{path}:{line_number}: expected '<image_id> <attribute_id> <is_present> "
                    "<certainty_id> <time>'; fix or delete this line"
                ) from None
            if values[0] not in row_of_image:
                raise DataError(
                    f"{path}:{line_number}: image id {values[0]} is not in {IMAGES_FILE}; "
                    "the files must list the same images"
                )
            for column, value in zip(columns, values):
                column.append(value)
    if not columns[0]:
        raise DataError(f"{path}: empty; it must hold one line per (image, attribute)")
    image_ids, attribute_ids, is_present, certainty = (np.asarray(c, dtype=np.int64) for c in columns)
    count = int(attribute_ids.max()) if num_attributes is None else num_attributes
    problems = [
        (attribute_ids < 1) | (attribute_ids > count),
        ~np.isin(is_present, (0, 1)),
        ~np.isin(certainty, CERTAINTY_IDS),
    ]
    what = [f"an attribute id outside 1..{count}", "is_present not 0 or 1", "a certainty id not in 1..4"]
    for bad, description in zip(problems, what):
        if bad.any():
            index = int(np.flatnonzero(bad)[0])
            raise DataError(
                f"{path}: a line for image {image_ids[index]}, attribute {attribute_ids[index]} has "
                f"{description}; fix that line"
            )
    rows = np.asarray([row_of_image[i] for i in image_ids.tolist()], dtype=np.int64)
    covered = np.zeros(len(row_of_image), dtype=bool)
    covered[rows] = True
    if not covered.all():
        missing_row = int(np.flatnonzero(~covered)[0])
        missing_id = next(i for i, row in row_of_image.items() if row == missing_row)
        raise DataError(
            f"{path}: no line for image id {missing_id} of {IMAGES_FILE}; add its attribute lines"
        )
    present_matrix = np.zeros((len(row_of_image), count), dtype=np.uint8)
    certainty_matrix = np.full((len(row_of_image), count), NOT_VISIBLE, dtype=np.uint8)
    present_matrix[rows, attribute_ids - 1] = is_present
    certainty_matrix[rows, attribute_ids - 1] = certainty
    return present_matrix, certainty_matrix


def read_annotations(data_dir: Path) -> CubAnnotations:
    """Read and cross-check every text file of the layout (no image is opened).

    Raises DataError naming the file for a missing file, a malformed line or ids that do not
    match across files.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put a CUB-200-2011 layout dataset there or run the demo"
        )
    images_path = _existing_file(data_dir, IMAGES_FILE, "'<image_id> <path>' lines")
    split_path = _existing_file(data_dir, SPLIT_FILE, "'<image_id> <is_training_image>' lines")
    labels_path = _existing_file(data_dir, LABELS_FILE, "'<image_id> <class_id>' lines")
    classes_path = _existing_file(data_dir, CLASSES_FILE, "'<class_id> <name>' lines")
    attributes_path = _existing_file(
        data_dir,
        ATTRIBUTE_LABELS_FILE,
        "'<image_id> <attribute_id> <is_present> <certainty_id> <time>' lines",
    )

    paths = read_id_table(images_path, "relative image path")
    image_ids = sorted(paths)
    id_set = set(image_ids)
    split_table = read_id_table(split_path, "is_training_image")
    _same_ids(split_path, set(split_table), id_set)
    is_training = _integer_values(split_path, split_table, {0, 1}, "0 or 1")
    classes = read_id_table(classes_path, "class name")
    labels_table = read_id_table(labels_path, "class_id")
    _same_ids(labels_path, set(labels_table), id_set)
    class_ids = _integer_values(labels_path, labels_table, set(classes), f"a class id of {CLASSES_FILE}")
    class_order = sorted(classes)
    class_index = {class_id: index for index, class_id in enumerate(class_order)}

    names = read_attribute_names(data_dir)
    row_of_image = {image_id: row for row, image_id in enumerate(image_ids)}
    is_present, certainty = read_attribute_labels(
        attributes_path, row_of_image, None if names is None else max(names)
    )
    attribute_names = [
        (names or {}).get(index + 1, f"attribute_{index + 1}") for index in range(is_present.shape[1])
    ]
    annotations = CubAnnotations(
        image_ids=np.asarray(image_ids, dtype=np.int64),
        paths=[paths[i] for i in image_ids],
        is_training=np.asarray([is_training[i] == 1 for i in image_ids]),
        labels=np.asarray([class_index[class_ids[i]] for i in image_ids], dtype=np.int64),
        class_names=[classes[c] for c in class_order],
        is_present=is_present,
        certainty=certainty,
        attribute_names=attribute_names,
    )
    for wanted, word in ((True, "training"), (False, "test")):
        if not (annotations.is_training == wanted).any():
            raise DataError(
                f"{split_path}: no {word} image (is_training_image {int(wanted)}); CUB needs both splits"
            )
    return annotations


def check_images(data_dir: Path, annotations: CubAnnotations) -> None:
    """Every image listed in images.txt exists under images/ and opens (header only)."""
    images_dir = Path(data_dir) / IMAGES_DIR
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: image folder missing; put the dataset's images there")
    for relative in annotations.paths:
        path = images_dir / relative
        if not path.is_file():
            raise DataError(
                f"{path}: listed in {IMAGES_FILE} but missing; add the image or remove its lines"
            )
        try:
            with Image.open(path):
                pass
        except Exception as error:  # PIL raises several types for unreadable files
            raise DataError(
                f"{path}: unreadable image ({first_line(error)}); replace it or remove its lines"
            ) from None


def check_data(data_dir: Path) -> None:
    """Cheap checks of the whole layout: text files, id agreement, image headers (no pixels).

    Raises DataError (one line) on the first problem.
    """
    annotations = read_annotations(Path(data_dir))
    check_images(Path(data_dir), annotations)


def validation_split(
    training_rows: np.ndarray, labels: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split the official training rows into (train rows, val rows), stratified by class.

    Per class (rows in ascending order, shuffled by a generator seeded with `seed`),
    round(val_fraction x n) rows go to val, at least 1 and at most n - 1 when n >= 2 (a class
    with one training image keeps it for training). Both outputs are sorted; the result depends
    only on the rows, their labels, the fraction and the seed.
    """
    generator = np.random.default_rng(seed)
    val_parts = []
    for label in np.unique(labels[training_rows]):
        rows = np.sort(training_rows[labels[training_rows] == label])
        count = 0 if len(rows) < 2 else min(len(rows) - 1, max(1, round(val_fraction * len(rows))))
        val_parts.append(generator.permutation(rows)[:count])
    val_rows = np.sort(np.concatenate(val_parts)) if val_parts else np.empty(0, dtype=np.int64)
    train_rows = np.setdiff1d(training_rows, val_rows)
    return train_rows, val_rows


def split_rows(annotations: CubAnnotations, split: str, val_fraction: float, seed: int) -> np.ndarray:
    """Rows (indices into the annotations) of "train", "val" (carved from train) or "test"."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLITS)}")
    if split == "test":
        return np.flatnonzero(~annotations.is_training)
    train_rows, val_rows = validation_split(
        np.flatnonzero(annotations.is_training), annotations.labels, val_fraction, seed
    )
    return train_rows if split == "train" else val_rows


def load_images(
    data_dir: Path, annotations: CubAnnotations, rows: np.ndarray, image_size: int
) -> torch.Tensor:
    """Decode the images of `rows` once into a (len(rows), 3, S, S) uint8 tensor.

    Raises DataError naming a file that fails to decode.
    """
    images = torch.empty((len(rows), 3, image_size, image_size), dtype=torch.uint8)
    for index, row in enumerate(rows.tolist()):
        path = Path(data_dir) / IMAGES_DIR / annotations.paths[row]
        try:
            images[index] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace it or remove its lines"
            ) from None
    return images


def certainty_weights(certainty: np.ndarray) -> np.ndarray:
    """Certainty ids 1..4 -> weights 0 (not visible), 0.5 (guessing), 0.75, 1 (definitely)."""
    return np.asarray([0.0, 0.0, 0.5, 0.75, 1.0], dtype=np.float32)[certainty]


def attribute_vectors(
    annotations: CubAnnotations, rows: np.ndarray, use_certainty: bool
) -> torch.Tensor:
    """(len(rows), A) float attribute inputs: +1 present, -1 absent, scaled by certainty if asked.

    With use_certainty, an attribute marked "not visible" becomes 0 (no evidence either way).
    """
    signed = 2.0 * annotations.is_present[rows].astype(np.float32) - 1.0
    if use_certainty:
        signed = signed * certainty_weights(annotations.certainty[rows])
    return torch.from_numpy(np.ascontiguousarray(signed))
