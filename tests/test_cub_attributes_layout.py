"""cub_attributes reads CUB-200-2011 as its tarball unpacks (real metadata excerpts in
tests/fixtures/cub): the dataset one level down, the attribute names beside it, the parse
cache, and class-level attribute vectors refused as a label leak."""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from tasks.common import file_cache
from tasks.cub_attributes import data as cub
from tasks.cub_attributes import task
from tasks.cub_attributes.attribute_labels import CACHE_NAMESPACE, read_attribute_label_lines
from tests.conftest import orchestrate
from tests.cub_layouts import DATASET, tarball


@pytest.fixture(autouse=True)
def private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv(file_cache.CACHE_DIR_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_tarball_root_is_read_with_the_dataset_one_level_down_and_the_report_says_so(tmp_path):
    report = task.check_data(tarball(tmp_path / "download"))
    assert report.layout == "CUB-200-2011, unpacked tarball (CUB_200_2011/ one level down)"
    assert report.splits == {"train": 66, "val": 24, "test": 88} and report.unit == "images"
    assert not report.problems and not report.leaks
    sources = "\n".join(report.sources)
    assert "dataset: CUB_200_2011/ found one level down" in sources
    assert "attribute names: attributes.txt" in sources
    assert "split: train_test_split.txt (90 training / 88 test images); val = 24" in sources
    annotations = cub.read_annotations(tmp_path / "download")
    assert annotations.num_attributes == 312 and annotations.attribute_names[0] == "test_attribute::1"
    assert annotations.class_names == ["001.Black_footed_Albatross", "002.Laysan_Albatross", "003.Sooty_Albatross"]


def test_pointing_at_the_dataset_folder_still_finds_the_names_beside_it(tmp_path):
    tarball(tmp_path)
    report = task.check_data(tmp_path / DATASET)
    assert report.layout == "CUB-200-2011 (the dataset folder itself)" and not report.problems
    assert f"attribute names: {tmp_path / 'attributes.txt'}" in report.sources


def test_names_inside_the_attributes_folder_come_first(tmp_path):
    tarball(tmp_path)
    (tmp_path / DATASET / "attributes" / "attributes.txt").write_text(
        "".join(f"{i} inner::{i}\n" for i in range(1, 313)))
    assert cub.read_annotations(tmp_path).attribute_names[5] == "inner::6"


def test_class_level_attributes_written_per_image_are_refused_as_a_label_leak(tmp_path):
    report = task.check_data(tarball(tmp_path, class_level=True))
    assert not report.problems
    (leak,) = report.leaks
    assert "in each of the 3 classes every image has the same attribute vector" in leak
    assert "a label leak" in leak and "--allow-data-leak" in leak and "\n" not in leak
    assert leak.startswith("CUB_200_2011/attributes/image_attribute_labels.txt:")


def test_one_image_that_differs_is_enough_for_no_leak(tmp_path):
    tarball(tmp_path, class_level=True)
    path = tmp_path / DATASET / "attributes" / "image_attribute_labels.txt"
    lines = path.read_text().splitlines()
    for index, line in enumerate(lines):  # flip attribute 1 of image 1: class 1 is no longer constant
        if line.startswith("1 1 "):
            image, attribute, present, rest = line.split(" ", 3)
            lines[index] = f"{image} {attribute} {1 - int(present)} {rest}"
    path.write_text("\n".join(lines) + "\n")
    assert not task.check_data(tmp_path).leaks


def test_second_read_hits_the_cache_and_a_changed_source_misses_it(tmp_path, private_cache):
    tarball(tmp_path)
    source = tmp_path / DATASET / "attributes" / "image_attribute_labels.txt"
    first = read_attribute_label_lines(source)
    assert not first.from_cache and first.cache_file and first.cache_file.is_file()
    assert first.cache_file.parent == private_cache / CACHE_NAMESPACE
    second = read_attribute_label_lines(source)
    assert second.from_cache
    for name, column in first.arrays().items():
        assert np.array_equal(column, second.arrays()[name]), name
    assert "read from the cache of its parse" in " ".join(task.check_data(tmp_path).sources)

    lines = source.read_text().splitlines()
    image, attribute, present, rest = lines[0].split(" ", 3)
    lines[0] = f"{image} {attribute} {1 - int(present)} {rest}"  # same size, other content
    source.write_text("\n".join(lines) + "\n")
    os.utime(source, ns=(time.time_ns(), time.time_ns() + 10**9))  # a new mtime even on coarse clocks
    third = read_attribute_label_lines(source)
    assert not third.from_cache and third.is_present[0] == 1 - first.is_present[0]
    assert [path.name for path in first.cache_file.parent.iterdir()] == [first.cache_file.name]  # no temp files


def test_an_unreadable_cache_is_ignored_and_rewritten(tmp_path):
    tarball(tmp_path)
    source = tmp_path / DATASET / "attributes" / "image_attribute_labels.txt"
    cache_file = read_attribute_label_lines(source).cache_file
    cache_file.write_bytes(b"half a file")
    again = read_attribute_label_lines(source)
    assert not again.from_cache and len(again.image_id) == 178 * 312
    assert read_attribute_label_lines(source).from_cache


def test_a_file_with_bad_lines_is_not_cached(tmp_path):
    tarball(tmp_path)
    source = tmp_path / DATASET / "attributes" / "image_attribute_labels.txt"
    source.write_text(source.read_text() + "not a line\n")
    lines = read_attribute_label_lines(source)
    assert lines.problems and lines.cache_file is None
    assert not file_cache.cache_path(source, CACHE_NAMESPACE).exists()


def test_cli_data_check_exit_0_on_the_tarball_and_2_on_the_leak(tmp_path):
    good = orchestrate("data", "--task", "cub_attributes", "--check", str(tarball(tmp_path / "good")), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "splits:   train 66, val 24, test 88 images" in good.stdout
    assert "source:   dataset: CUB_200_2011/ found one level down" in good.stdout
    leaky = orchestrate("data", "--task", "cub_attributes", "--check",
                        str(tarball(tmp_path / "leaky", class_level=True)), cwd=tmp_path)
    assert leaky.returncode == 2
    assert "1 leak:" in leaky.stdout and "a label leak" in leaky.stdout


def test_sweep_refuses_the_leak_in_one_line_before_any_trial(tmp_path):
    data_dir = tarball(tmp_path / "leaky", class_level=True)
    workdir = tmp_path / "work"
    workdir.mkdir()
    refused = orchestrate("sweep", "--task", "cub_attributes", "--data-dir", str(data_dir),
                          "--trials", "1", "--max-epochs", "2", cwd=workdir)
    assert refused.returncode == 2
    (line,) = refused.stderr.strip().splitlines()
    assert line.startswith("error: ") and "a label leak" in line
    assert not any(workdir.iterdir())  # no MLflow store, no results: nothing written


def test_trials_starting_at_once_all_read_the_same_labels_and_leave_one_cache_file(tmp_path, private_cache):
    tarball(tmp_path)
    source = tmp_path / DATASET / "attributes" / "image_attribute_labels.txt"
    expected = int(read_attribute_label_lines(source, use_cache=False).is_present.sum())
    # Threads race on the same cache file as trial processes would (pyarrow and the write release the GIL).
    with ThreadPoolExecutor(max_workers=4) as pool:
        sums = list(pool.map(lambda _: int(read_attribute_label_lines(source).is_present.sum()), range(8)))
    assert sums == [expected] * 8
    (cache_file,) = (private_cache / CACHE_NAMESPACE).iterdir()  # one file, no temporary left over
    assert read_attribute_label_lines(source).from_cache and cache_file.suffix == ".npz"
