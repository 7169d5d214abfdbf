"""The CUB-200-2011 layout reader: tolerant parsing, errors that name the file, the val split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.base import DataError
from tasks.cub_attributes import data as cub
from tasks.cub_attributes import task

CLASSES = {1: "001.Black_footed_Albatross", 2: "002.Laysan_Albatross"}
IMAGES_PER_CLASS = 4
NUM_ATTRIBUTES = 3


def write_tiny_cub(root: Path) -> None:
    """2 classes x 4 images (ids 1..8; per class 3 training and 1 test), 3 attributes.

    Image i has attribute 1 present "definitely", attribute 2 absent "probably", attribute 3
    "not visible"; one attribute line has an extra field, as in the official file.
    """
    (root / "attributes").mkdir(parents=True)
    images, split, labels, attributes = [], [], [], []
    for image_id in range(1, 2 * IMAGES_PER_CLASS + 1):
        class_id = 1 + (image_id - 1) // IMAGES_PER_CLASS
        relative = f"{CLASSES[class_id]}/bird_{image_id}.jpg"
        (root / cub.IMAGES_DIR / CLASSES[class_id]).mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (40, 30), (20 * image_id, 50, 200)).save(root / cub.IMAGES_DIR / relative)
        images.append(f"{image_id} {relative}")
        split.append(f"{image_id} {int(image_id % IMAGES_PER_CLASS != 0)}")
        labels.append(f"{image_id} {class_id}")
        attributes += [f"{image_id} 1 1 4 3.5", f"{image_id} 2 0 3 1.25", f"{image_id} 3 0 1 0.5"]
    attributes[4] += " 17.3"  # a malformed line with a 6th field
    files = {
        cub.IMAGES_FILE: images,
        cub.SPLIT_FILE: split,
        cub.LABELS_FILE: labels,
        cub.CLASSES_FILE: [f"{i} {name}" for i, name in CLASSES.items()],
        cub.ATTRIBUTE_LABELS_FILE: attributes,
        "attributes.txt": ["1 has_bill_shape::hooked", "2 has_wing_color::grey", "3 has_size::large"],
    }
    for name, lines in files.items():
        (root / name).write_text("\n".join(lines) + "\n")


@pytest.fixture
def tiny(tmp_path) -> Path:
    write_tiny_cub(tmp_path)
    return tmp_path


def test_tiny_layout_reads_with_its_malformed_line_tolerated(tiny):
    task.check_data(tiny)
    annotations = cub.read_annotations(tiny)
    assert annotations.image_ids.tolist() == list(range(1, 9))
    assert annotations.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert annotations.class_names == list(CLASSES.values())
    assert annotations.attribute_names[0] == "has_bill_shape::hooked"  # names from attributes.txt
    assert annotations.is_present[:, 0].all() and not annotations.is_present[:, 1:].any()
    assert annotations.certainty[0].tolist() == [4, 3, 1]
    assert annotations.is_training.tolist() == [True, True, True, False] * 2


def test_attribute_vectors_are_signed_and_weighted_by_certainty(tiny):
    annotations = cub.read_annotations(tiny)
    rows = np.arange(2)
    weighted = cub.attribute_vectors(annotations, rows, use_certainty=True)
    assert weighted.tolist() == [[1.0, -0.75, 0.0]] * 2  # definitely, probably absent, not visible
    plain = cub.attribute_vectors(annotations, rows, use_certainty=False)
    assert plain.tolist() == [[1.0, -1.0, -1.0]] * 2


def test_missing_attribute_lines_count_as_not_visible_and_names_are_optional(tiny):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("2 1 ")) + "\n")
    (tiny / "attributes.txt").unlink()
    annotations = cub.read_annotations(tiny)
    assert annotations.attribute_names == ["attribute_1", "attribute_2", "attribute_3"]
    assert annotations.certainty[1, 0] == cub.NOT_VISIBLE and annotations.is_present[1, 0] == 0


@pytest.mark.parametrize(
    "name",
    [cub.IMAGES_FILE, cub.SPLIT_FILE, cub.LABELS_FILE, cub.CLASSES_FILE, cub.ATTRIBUTE_LABELS_FILE],
)
def test_missing_file_is_named_in_one_line(tiny, name):
    (tiny / name).unlink()
    with pytest.raises(DataError, match=f"{name}: missing") as error:
        task.check_data(tiny)
    assert "\n" not in str(error.value)


def test_ids_that_do_not_match_across_files_name_the_file(tiny):
    path = tiny / cub.LABELS_FILE
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")  # drop image 8
    with pytest.raises(DataError, match=r"image_class_labels.txt: lacks image ids \[8\]"):
        task.check_data(tiny)


def test_attribute_line_for_an_unknown_image_names_the_file_and_line(tiny):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    path.write_text(path.read_text() + "99 1 1 4 2.0\n")
    with pytest.raises(DataError, match=r"image_attribute_labels.txt:25: image id 99 is not in images.txt"):
        task.check_data(tiny)


@pytest.mark.parametrize(
    "line, problem",
    [("1 2 1", "expected '<image_id>"), ("1 7 1 4 2.0", "attribute id outside 1..3"),
     ("1 2 1 9 2.0", "certainty id not in 1..4")],
)
def test_bad_attribute_lines_are_reported(tiny, line, problem):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    path.write_text(path.read_text() + line + "\n")
    with pytest.raises(DataError, match=problem) as error:
        task.check_data(tiny)
    assert "image_attribute_labels.txt" in str(error.value)


def test_class_id_unknown_to_classes_txt_is_reported(tiny):
    path = tiny / cub.LABELS_FILE
    path.write_text(path.read_text().replace("8 2", "8 3"))
    with pytest.raises(DataError, match="image_class_labels.txt: image 8 has value '3'"):
        task.check_data(tiny)


def test_missing_and_unreadable_images_are_named(tiny):
    image = tiny / cub.IMAGES_DIR / CLASSES[1] / "bird_2.jpg"
    image.write_bytes(b"not an image at all")
    with pytest.raises(DataError, match=r"bird_2\.jpg: unreadable image"):
        task.check_data(tiny)
    image.unlink()
    with pytest.raises(DataError, match=r"bird_2\.jpg: listed in images.txt but missing"):
        task.check_data(tiny)


def test_truncated_image_is_named_when_decoded(tiny):
    image = tiny / cub.IMAGES_DIR / CLASSES[2] / "bird_5.jpg"
    image.write_bytes(image.read_bytes()[:200])  # header intact, pixels cut off
    annotations = cub.read_annotations(tiny)
    with pytest.raises(DataError, match=r"bird_5\.jpg: cannot decode image"):
        cub.load_images(tiny, annotations, np.arange(8), 16)


def test_empty_directory_raises_one_line(tmp_path):
    with pytest.raises(DataError, match="missing or empty") as error:
        task.check_data(tmp_path)
    assert "\n" not in str(error.value) and str(tmp_path) in str(error.value)


def test_validation_split_is_stratified_disjoint_and_fixed_by_its_seed():
    labels = np.repeat(np.arange(4), 10)
    training_rows = np.flatnonzero(np.arange(40) % 5 != 0)  # 8 training rows per class
    train, val = cub.validation_split(training_rows, labels, val_fraction=0.25, seed=1)
    assert np.bincount(labels[val]).tolist() == [2, 2, 2, 2]
    assert set(train) | set(val) == set(training_rows) and not set(train) & set(val)
    again_train, again_val = cub.validation_split(training_rows[::-1], labels, 0.25, seed=1)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, cub.validation_split(training_rows, labels, 0.25, seed=2)[1])


def test_splits_partition_the_images_and_test_is_the_official_test_set(tiny):
    annotations = cub.read_annotations(tiny)
    rows = {split: cub.split_rows(annotations, split, 0.34, seed=0) for split in cub.SPLITS}
    assert rows["test"].tolist() == [3, 7]
    assert len(rows["val"]) == 2 and sorted(np.concatenate(list(rows.values()))) == list(range(8))
    assert set(annotations.labels[rows["val"]]) == {0, 1}
