"""The CUB-200-2011 reader on a tiny layout: tolerant parsing, every problem listed one line each
naming the file, the certainty threshold, and the val split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tasks.base import DataError
from tasks.cub_attributes import data as cub
from tasks.cub_attributes import task
from tasks.cub_attributes.model_inputs import attribute_vectors, load_images
from tasks.cub_attributes.splits import SPLITS, validation_split

CLASSES = {1: "001.Black_footed_Albatross", 2: "002.Laysan_Albatross"}
IMAGES_PER_CLASS = 4
NUM_ATTRIBUTES = 3


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("ORCHESTRATE_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))


def write_tiny_cub(root: Path) -> None:
    """2 classes x 4 images (ids 1..8; per class 3 training and 1 test), 3 attributes.

    Every image has attribute 1 present "definitely" and attribute 3 "not visible"; attribute 2
    is "probably" present on even ids and "probably" absent on odd ones (so the attributes vary
    within a class, as real annotations do). One line has an extra field, as in the official file.
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
        attributes += [f"{image_id} 1 1 4 3.5", f"{image_id} 2 {int(image_id % 2 == 0)} 3 1.25",
                       f"{image_id} 3 0 1 0.5"]
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


def only_problem(root: Path) -> str:
    report = task.check_data(root)
    assert len(report.problems) == 1, report.problems
    assert "\n" not in report.problems[0]
    return report.problems[0]


def test_tiny_layout_reads_with_its_malformed_line_tolerated(tiny):
    report = task.check_data(tiny)
    assert not report.problems and not report.leaks
    assert report.layout == "CUB-200-2011 (the dataset folder itself)"
    assert report.splits == {"train": 4, "val": 2, "test": 2}
    annotations = cub.read_annotations(tiny)
    assert annotations.image_ids.tolist() == list(range(1, 9))
    assert annotations.labels.tolist() == [0, 0, 0, 0, 1, 1, 1, 1]
    assert annotations.class_names == list(CLASSES.values())
    assert annotations.attribute_names[0] == "has_bill_shape::hooked"  # names from attributes.txt
    assert annotations.is_present[:, 0].all() and not annotations.is_present[:, 2].any()
    assert annotations.is_present[:, 1].tolist() == [0, 1] * 4
    assert annotations.certainty[0].tolist() == [4, 3, 1]
    assert annotations.is_training.tolist() == [True, True, True, False] * 2


def test_attribute_vectors_are_signed_and_weighted_by_certainty(tiny):
    annotations = cub.read_annotations(tiny)
    present, certainty = annotations.is_present[:2], annotations.certainty[:2]
    weighted = attribute_vectors(present, certainty, use_certainty=True)
    assert weighted.tolist() == [[1.0, -0.75, 0.0], [1.0, 0.75, 0.0]]  # definitely, probably, not visible
    plain = attribute_vectors(present, certainty, use_certainty=False)
    assert plain.tolist() == [[1.0, -1.0, -1.0], [1.0, 1.0, -1.0]]


def test_certainty_threshold_counts_only_sure_annotations_as_present():
    present = np.asarray([[1, 1, 1, 0]], dtype=np.uint8)
    certainty = np.asarray([[2, 3, 4, 4]], dtype=np.uint8)  # guessing, probably, definitely
    assert attribute_vectors(present, certainty, False, min_certainty=1).tolist() == [[1, 1, 1, -1]]
    assert attribute_vectors(present, certainty, False, min_certainty=4).tolist() == [[-1, -1, 1, -1]]
    # with certainty weights, annotations under the threshold carry no evidence at all
    assert attribute_vectors(present, certainty, True, min_certainty=3).tolist() == [[0, 0.75, 1, -1]]


def test_missing_attribute_lines_count_as_not_visible_and_names_are_optional(tiny):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for line in lines if not line.startswith("2 1 ")) + "\n")
    (tiny / "attributes.txt").unlink()
    annotations = cub.read_annotations(tiny)
    assert annotations.attribute_names == ["attribute_1", "attribute_2", "attribute_3"]
    assert annotations.certainty[1, 0] == 1 and annotations.is_present[1, 0] == 0
    assert "attributes named attribute_<id>" in " ".join(task.check_data(tiny).sources)


@pytest.mark.parametrize(
    "name",
    [cub.IMAGES_FILE, cub.SPLIT_FILE, cub.LABELS_FILE, cub.CLASSES_FILE, cub.ATTRIBUTE_LABELS_FILE],
)
def test_missing_file_is_named_in_one_line(tiny, name):
    (tiny / name).unlink()
    assert f"{name}: missing" in only_problem(tiny)


def test_every_missing_file_is_listed(tiny):
    (tiny / cub.SPLIT_FILE).unlink()
    (tiny / cub.CLASSES_FILE).unlink()
    problems = task.check_data(tiny).problems
    assert len(problems) == 2 and all("missing" in line for line in problems)


def test_ids_that_do_not_match_across_files_name_the_file(tiny):
    path = tiny / cub.LABELS_FILE
    path.write_text("\n".join(path.read_text().splitlines()[:-1]) + "\n")  # drop image 8
    assert "image_class_labels.txt: lacks 1 image id(s) of images.txt [8]" in only_problem(tiny)


def test_attribute_lines_for_unknown_images_name_the_file_count_and_examples(tiny):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    path.write_text(path.read_text() + "99 1 1 4 2.0\n99 2 0 4 2.0\n")
    assert ("image_attribute_labels.txt: 2 line(s) name image ids not in images.txt "
            "(image 99 attribute 1, image 99 attribute 2)") in only_problem(tiny)


@pytest.mark.parametrize(
    "line, problem",
    [("1 2 1", "image_attribute_labels.txt:25: expected '<image_id>"),
     ("1 x 1 4 2.0", "image_attribute_labels.txt:25: expected '<image_id>"),
     ("1 7 1 4 2.0", "1 line(s) have an attribute id outside 1..3"),
     ("1 2 1 9 2.0", "1 line(s) have a certainty id not in 1..4"),
     ("1 2 1 4 2.0", "1 (image, attribute) pair(s) on more than one line (image 1 attribute 2)")],
)
def test_bad_attribute_lines_are_reported(tiny, line, problem):
    path = tiny / cub.ATTRIBUTE_LABELS_FILE
    path.write_text(path.read_text() + line + "\n")
    assert problem in only_problem(tiny)


def test_every_bad_line_of_every_file_is_listed(tiny):
    for name, extra in ((cub.IMAGES_FILE, "oops\n"), (cub.CLASSES_FILE, "x no_id\n"),
                        (cub.ATTRIBUTE_LABELS_FILE, "1 2\n3\n")):
        path = tiny / name
        path.write_text(path.read_text() + extra)
    problems = task.check_data(tiny).problems
    assert len(problems) == 4, problems
    assert sum("image_attribute_labels.txt:" in line for line in problems) == 2


def test_class_id_unknown_to_classes_txt_is_reported(tiny):
    path = tiny / cub.LABELS_FILE
    path.write_text(path.read_text().replace("8 2", "8 3"))
    assert "image_class_labels.txt: image 8 has value '3'" in only_problem(tiny)


def test_missing_and_unreadable_images_are_all_named(tiny):
    (tiny / cub.IMAGES_DIR / CLASSES[1] / "bird_2.jpg").write_bytes(b"not an image at all")
    (tiny / cub.IMAGES_DIR / CLASSES[2] / "bird_6.jpg").unlink()
    problems = task.check_data(tiny).problems
    assert len(problems) == 2
    assert any("bird_2.jpg: unreadable image" in line for line in problems)
    assert any("bird_6.jpg: listed in images.txt but missing" in line for line in problems)


def test_truncated_image_is_named_when_decoded(tiny):
    image = tiny / cub.IMAGES_DIR / CLASSES[2] / "bird_5.jpg"
    image.write_bytes(image.read_bytes()[:200])  # header intact, pixels cut off
    annotations = cub.read_annotations(tiny)
    with pytest.raises(DataError, match=r"bird_5\.jpg: cannot decode image"):
        load_images(annotations.images_dir, annotations.paths, np.arange(8), 16)


def test_empty_directory_is_one_problem(tmp_path):
    assert str(tmp_path) in only_problem(tmp_path)
    with pytest.raises(DataError, match="missing or empty"):
        cub.read_annotations(tmp_path)


def test_validation_split_is_stratified_disjoint_and_fixed_by_its_seed():
    labels = np.repeat(np.arange(4), 10)
    training_rows = np.flatnonzero(np.arange(40) % 5 != 0)  # 8 training rows per class
    train, val = validation_split(training_rows, labels, val_fraction=0.25, seed=1)
    assert np.bincount(labels[val]).tolist() == [2, 2, 2, 2]
    assert set(train) | set(val) == set(training_rows) and not set(train) & set(val)
    again_train, again_val = validation_split(training_rows[::-1], labels, 0.25, seed=1)
    assert np.array_equal(val, again_val) and np.array_equal(train, again_train)
    assert not np.array_equal(val, validation_split(training_rows, labels, 0.25, seed=2)[1])


def test_splits_partition_the_images_and_test_is_the_official_test_set(tiny):
    annotations = cub.read_annotations(tiny)
    rows = {split: annotations.split_rows(split, 0.34, seed=0) for split in SPLITS}
    assert rows["test"].tolist() == [3, 7]
    assert len(rows["val"]) == 2 and sorted(np.concatenate(list(rows.values()))) == list(range(8))
    assert set(annotations.labels[rows["val"]]) == {0, 1}
