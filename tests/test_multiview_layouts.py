"""Each multiview layout reader on small trees named as the real datasets are, through check_data.

MVCNN renders, CO3D v2 (with and without set lists) and MVImgNet; layout detection; every
problem of a broken tree listed, one line each, naming the file.
"""

from __future__ import annotations

import csv
import json

import pytest

from tasks.multiview import task
from tasks.multiview.layouts import co3d, mvcnn, mvimgnet
from tests.fixtures.multiview.trees import (
    co3d_frame,
    co3d_sequence_name,
    mvcnn_name,
    write_co3d_tree,
    write_mvcnn_tree,
    write_mvimgnet_tree,
    write_set_list,
    write_view,
)


def assert_clean(report) -> None:
    assert not report.problems and not report.leaks, (report.problems, report.leaks)


# --- ModelNet40 MVCNN renders ---------------------------------------------------------------


def test_mvcnn_renders_keep_their_train_test_folders_and_val_is_carved_from_train(tmp_path):
    write_mvcnn_tree(tmp_path)  # 4 classes x (5 train + 3 test) objects, 12 views each
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert report.layout == mvcnn.LAYOUT
    # 20% of each class's 5 train objects is 1: val 4 objects, train 16; test as shipped.
    assert (report.splits, report.unit) == ({"train": 16, "val": 4, "test": 12}, "objects")
    assert any("train/ and test/ folders (train 20, test 12 objects)" in line for line in report.sources)
    assert any(line.startswith("val: 20% of each class's train objects") for line in report.sources)
    assert any("384 images, 12 per object" in line for line in report.sources)


def test_mvcnn_object_is_named_before_obj_and_its_views_are_in_view_order(tmp_path):
    write_mvcnn_tree(tmp_path, classes=("night_stand",), train=2, test=1, views=12)
    scan = mvcnn.read(tmp_path)
    first = scan.objects["train"][0]
    assert (first.key, first.class_name) == ("night_stand/night_stand_0001", "night_stand")
    assert first.views[0] == "night_stand/train/night_stand_0001.obj.shaded_v001.png"
    assert [view[-7:-4] for view in first.views] == [f"{v:03d}" for v in range(1, 13)]
    assert [item.key for item in scan.objects["test"]] == ["night_stand/night_stand_0003"]


def test_mvcnn_files_not_named_like_renders_are_left_out_and_counted(tmp_path):
    write_mvcnn_tree(tmp_path)
    (tmp_path / "chair" / "train" / "Thumbs.db").write_bytes(b"x")
    write_view(tmp_path / "chair" / "train" / "chair_0001.obj.depth_v001.png", "depth", 1)
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert any(line.startswith("left out 2 file(s) not named") for line in report.sources)


def test_mvcnn_broken_tree_lists_every_problem_naming_the_file(tmp_path):
    write_mvcnn_tree(tmp_path)
    for view in range(2, 13):  # chair_0002 keeps one view
        (tmp_path / "chair" / "train" / mvcnn_name("chair", 2, view)).unlink()
    write_view(tmp_path / "chair" / "test" / mvcnn_name("table", 1, 1), "stray", 1)
    write_view(tmp_path / "chair" / "test" / mvcnn_name("table", 1, 2), "stray", 2)
    (tmp_path / "airplane" / "train" / mvcnn_name("airplane", 1, 3)).write_bytes(b"not a png")
    (tmp_path / "sofa").mkdir()
    report = task.check_data(tmp_path)
    problems = "\n".join(report.problems)
    assert len(report.problems) == 4, problems
    assert "chair/train/chair_0002.obj.shaded_v001.png: the only view of object chair/chair_0002" in problems
    assert "table_0001.obj.shaded_v001.png: object 'table_0001' is in class folder 'chair'" in problems
    assert "airplane/train/airplane_0001.obj.shaded_v003.png: unreadable image" in problems
    assert f"{tmp_path / 'sofa'}: no train/ or test/ folder" in problems
    assert all("\n" not in line for line in report.problems)


def test_the_same_object_in_train_and_test_folders_is_a_leak(tmp_path):
    write_mvcnn_tree(tmp_path)
    for view in range(1, 13):
        write_view(tmp_path / "chair" / "test" / mvcnn_name("chair", 1, view), "copy", view)
    report = task.check_data(tmp_path)
    assert not report.problems
    assert len(report.leaks) == 1
    assert "object chair/chair_0001 is in train and test (1 object in more than one split)" in report.leaks[0]


# --- CO3D v2 --------------------------------------------------------------------------------


def test_co3d_split_comes_from_the_fewview_dev_set_lists_by_sequence(tmp_path):
    write_co3d_tree(tmp_path)  # 2 categories x (4 train + 2 test sequences), 6 frames each
    (tmp_path / "apple" / "999_1_2" / "images").mkdir(parents=True)  # on disk, in no set list
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert report.layout == co3d.LAYOUT
    assert report.splits == {"train": 6, "val": 2, "test": 4}
    assert any("set lists set_lists_fewview_dev.json of 2 categories (train 8, test 4 objects)" in line
               for line in report.sources)
    assert any("left out 1 sequence(s) on disk" in line for line in report.sources)
    scan = co3d.read(tmp_path)
    sequence = co3d_sequence_name(0, 0)
    first = scan.objects["train"][0]
    assert (first.key, first.class_name) == (f"apple/{sequence}", "apple")
    assert first.views == tuple(co3d_frame("apple", sequence, frame) for frame in range(1, 7))


def test_co3d_set_list_naming_missing_images_lists_each_with_its_entry(tmp_path):
    write_co3d_tree(tmp_path)
    sequence = co3d_sequence_name(1, 0)
    for frame in (2, 5):
        (tmp_path / co3d_frame("teddybear", sequence, frame)).unlink()
    report = task.check_data(tmp_path)
    set_list = tmp_path / "teddybear" / "set_lists" / "set_lists_fewview_dev.json"
    assert report.problems == [
        f"{set_list}: train entry {frame - 1} (sequence {sequence}, frame {frame}) names "
        f"{co3d_frame('teddybear', sequence, frame)}, which does not exist; unpack the category's "
        "image files"
        for frame in (2, 5)
    ]


def test_co3d_set_list_that_splits_one_sequence_across_train_and_test_is_a_leak(tmp_path):
    """The many-view set lists (and fewview_train) split the frames of one sequence."""
    write_co3d_tree(tmp_path, categories=("apple",))
    path = tmp_path / "apple" / "set_lists" / "set_lists_fewview_dev.json"
    lists = json.loads(path.read_text())
    moved = lists["train"][:3]
    lists["train"], lists["test"] = lists["train"][3:], lists["test"] + moved
    write_set_list(tmp_path, "apple", lists)
    report = task.check_data(tmp_path)
    assert len(report.leaks) == 1
    assert f"object apple/{moved[0][0]} is in train and test" in report.leaks[0]


def test_co3d_malformed_set_lists_and_a_missing_one_are_named(tmp_path):
    write_co3d_tree(tmp_path, categories=("apple", "teddybear", "bench"))
    apple = tmp_path / "apple" / "set_lists" / "set_lists_fewview_dev.json"
    lists = json.loads(apple.read_text())
    lists["train"][0] = ["only", "two"]
    write_set_list(tmp_path, "apple", lists)
    (tmp_path / "teddybear" / "set_lists" / "set_lists_fewview_dev.json").write_text("{not json")
    (tmp_path / "bench" / "set_lists" / "set_lists_fewview_dev.json").unlink()
    problems = task.check_data(tmp_path).problems
    set_list = "set_lists/set_lists_fewview_dev.json"
    expected = [
        f"{apple}: train entry 0 is ['only', 'two'], not [sequence_name",
        f"{tmp_path / 'bench' / set_list}: missing, though other categories have it",
        f"{tmp_path / 'teddybear' / set_list}: unreadable set list",
    ]
    for start in expected:
        assert sum(line.startswith(start) for line in problems) == 1, (start, problems)


def test_a_carved_split_too_small_to_pair_says_which_fraction_to_raise(tmp_path):
    write_co3d_tree(tmp_path, categories=("apple",), train_sequences=4)  # val carve: 1 sequence
    problems = task.check_data(tmp_path).problems
    assert problems == [
        f"{tmp_path}: split val has 1 object(s) with two or more views, needs at least 2 (a negative "
        "is another object); add objects or raise val_fraction"
    ]


def test_co3d_without_set_lists_is_carved_by_sequence(tmp_path):
    write_co3d_tree(tmp_path, set_lists=False)  # 6 sequences per category
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert report.layout == co3d.LAYOUT
    # per category: test round(0.2 x 6) = 1, val round(0.2 x 5) = 1, train 4
    assert report.splits == {"train": 8, "val": 2, "test": 2}
    assert any("no set_lists_fewview_dev.json in any category" in line for line in report.sources)


# --- MVImgNet -------------------------------------------------------------------------------


def test_mvimgnet_instances_are_carved_into_splits_by_instance(tmp_path):
    write_mvimgnet_tree(tmp_path, instances=5, frames=5)
    (tmp_path / "36").joinpath("stray.txt").write_text("not an instance")
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert report.layout == mvimgnet.LAYOUT
    assert report.splits == {"train": 6, "val": 2, "test": 2}
    assert any("MVImgNet ships no split" in line for line in report.sources)


def test_mvimgnet_frames_are_in_frame_order_and_derived_copies_are_left_out(tmp_path):
    write_mvimgnet_tree(tmp_path, classes=("36",), instances=2, frames=3)
    instance = sorted(path.name for path in (tmp_path / "36").iterdir())[0]
    images = tmp_path / "36" / instance / "images"
    write_view(images / "10.jpg", "late", 10)
    write_view(images / "000_bg_removed.png", "derived", 0)
    scan = mvimgnet.read(tmp_path)
    item = next(item for item in scan.objects["unsplit"] if item.key == f"36/{instance}")
    assert [view.rsplit("/", 1)[1] for view in item.views] == ["000.jpg", "001.jpg", "002.jpg", "10.jpg"]


def test_mvimgnet_instance_without_frames_is_named(tmp_path):
    write_mvimgnet_tree(tmp_path)
    (tmp_path / "7" / "ffffffff" / "sparse" / "0").mkdir(parents=True)
    problems = task.check_data(tmp_path).problems
    assert problems == [
        f"{tmp_path / '7' / 'ffffffff'}: no images/*.jpg; unpack the instance's frames or remove the folder"
    ]


# --- layout detection -----------------------------------------------------------------------


def test_a_dataset_unpacked_into_one_folder_is_found_one_level_down(tmp_path):
    write_mvcnn_tree(tmp_path / "modelnet40_images_new_12x")
    report = task.check_data(tmp_path)
    assert_clean(report)
    assert report.layout == mvcnn.LAYOUT
    assert report.sources[0] == "the dataset is one level down, in modelnet40_images_new_12x/"


def test_a_manifest_is_used_as_written_even_beside_an_image_tree(tmp_path):
    write_mvcnn_tree(tmp_path)
    views = [f"chair/train/{mvcnn_name('chair', number, view)}" for number in (1, 2) for view in (1, 2)]
    rows = [["pair_id", "view_a", "view_b", "pair_label", "split"]]
    rows += [["p0", views[0], views[1], 1, "train"], ["p1", views[2], views[3], 1, "train"]]
    with (tmp_path / "manifest.csv").open("w", newline="") as file:
        csv.writer(file).writerows(rows)
    report = task.check_data(tmp_path)
    assert report.layout.startswith("pair manifest")
    assert report.unit == "pairs" and report.splits["train"] == 2


@pytest.mark.parametrize("tree", ["empty", "unknown"])
def test_no_recognised_layout_is_one_problem_naming_the_directory(tmp_path, tree):
    if tree == "unknown":
        (tmp_path / "photos").mkdir()
        write_view(tmp_path / "photos" / "a.jpg", "a", 0)
    report = task.check_data(tmp_path)
    assert len(report.problems) == 1 and "\n" not in report.problems[0]
    assert report.problems[0].startswith(str(tmp_path))
    assert ".obj.shaded_v<VVV>.png" in report.problems[0] and "set_lists" in report.problems[0]
