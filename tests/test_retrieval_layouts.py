"""The retrieval task reads Flickr8k/Flickr30k as each download unpacks, from real annotation
excerpts (tests/fixtures/flickr): layout detection, split and caption sources stated, the
Karpathy json, and every data problem listed."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tasks.base import DataError
from tasks.retrieval import task
from tasks.retrieval import data as flickr
from tasks.retrieval.caption_files import parse_token_captions
from tasks.retrieval.split_sources import generated_split
from tests.conftest import orchestrate
from tests.flickr_layouts import (
    FIXTURES,
    NOT_IN_IMAGE_ZIP,
    TEXT,
    images_with_split_files,
    kaggle_download,
    karpathy_layout,
    original_zips,
    placeholder_images,
    split_names,
    token_captions,
    write_karpathy_json,
)

EXCERPT_SPLITS = {"train": 48, "val": 12, "test": 12}


def sources_text(report) -> str:
    return "\n".join(report.sources)


# --- layouts -----------------------------------------------------------------------------------


def test_original_zips_read_the_published_split_and_the_token_captions(tmp_path):
    report = task.check_data(original_zips(tmp_path))
    assert report.layout == "Flickr8k, original zips (Flicker8k_Dataset/ + Flickr8k_text/)"
    assert report.splits == EXCERPT_SPLITS and report.unit == "images"
    assert not report.problems and not report.leaks
    sources = sources_text(report)
    assert "captions: Flickr8k_text/Flickr8k.token.txt" in sources
    assert "Flickr8k_text/Flickr_8k.{train,dev,test}Images.txt (the published split)" in sources
    assert "not used: Flickr8k_text/Flickr8k.lemma.token.txt" in sources
    assert f"{NOT_IN_IMAGE_ZIP}.1 read as {NOT_IN_IMAGE_ZIP}" in sources


def test_token_file_typo_key_is_read_as_its_image_and_stated():
    table = parse_token_captions(TEXT / "Flickr8k.token.txt")
    assert len(table.captions[NOT_IN_IMAGE_ZIP]) == 5 and f"{NOT_IN_IMAGE_ZIP}.1" not in table.captions
    assert all(len(captions) == 5 for captions in table.captions.values())
    assert len(table.notes) == 1 and not table.problems


def test_split_files_beside_images_use_the_published_split(tmp_path):
    report = task.check_data(images_with_split_files(tmp_path))
    assert report.layout == "Flickr8k, Images/ + split files + captions.txt"
    assert report.splits == EXCERPT_SPLITS and not report.problems
    index = flickr.read_index(tmp_path)
    assert index.split_images == split_names()  # file order kept


def test_kaggle_download_gets_a_stated_deterministic_generated_split(tmp_path):
    report = task.check_data(kaggle_download(tmp_path))
    assert report.layout == "Flickr8k, Kaggle download (Images/ + captions.txt)"
    assert report.splits == {"train": 54, "val": 9, "test": 9} and not report.problems  # 72 images, 1/8 held out
    assert "generated 54/9/9" in sources_text(report) and "not the published split" in sources_text(report)
    split = flickr.read_index(tmp_path).split_images
    names = [name for names in split.values() for name in names]
    assert sorted(names) == sorted(set(names)) and len(names) == 72
    assert generated_split(list(reversed(names))) == split  # depends on the names only


def test_generated_split_keeps_flickr8k_proportions_on_the_full_image_count():
    names = [f"{number:05d}.jpg" for number in range(8091)]
    sizes = {split: len(images) for split, images in generated_split(names).items()}
    assert sizes == {"train": 6091, "val": 1000, "test": 1000}


def test_with_both_caption_files_the_token_file_is_used_and_captions_txt_named(tmp_path):
    original_zips(tmp_path)
    shutil.copy(FIXTURES / "captions.txt", tmp_path / "captions.txt")
    report = task.check_data(tmp_path)
    assert not report.problems
    assert "captions: Flickr8k_text/Flickr8k.token.txt" in report.sources
    assert any(line.startswith("not used: captions.txt") for line in report.sources)


def test_karpathy_json_gives_split_and_captions_and_wins_over_split_files(tmp_path):
    original_zips(tmp_path)
    captions = {name: [f"json caption {k} of {name}" for k in range(5)] for name in token_captions()}
    split_of = {name: split for split, names in split_names().items() for name in names}
    restval = split_names()["train"][:8]
    split_of.update({name: "restval" for name in restval})
    write_karpathy_json(tmp_path / "Flickr8k_text" / "dataset_flickr8k.json", split_of, captions, "flickr8k")
    report = task.check_data(tmp_path)
    assert report.layout == "Flickr8k, Karpathy split (Flicker8k_Dataset/ + Flickr8k_text/dataset_flickr8k.json)"
    assert report.splits == EXCERPT_SPLITS and not report.problems
    sources = sources_text(report)
    assert "Karpathy's split; its 8 restval images joined to train" in sources
    assert "Flickr8k_text/Flickr_8k.trainImages.txt" in sources and "not used" in sources
    index = flickr.read_index(tmp_path)
    assert set(restval) <= set(index.split_images["train"])
    assert index.captions[restval[0]][0] == f"json caption 0 of {restval[0]}"


def test_flickr30k_karpathy_json_opens_flickr30k_images(tmp_path):
    report = task.check_data(karpathy_layout(tmp_path, "flickr30k", "flickr30k-images"))
    assert report.layout == "Flickr30k, Karpathy split (flickr30k-images/ + dataset_flickr30k.json)"
    assert report.splits == EXCERPT_SPLITS and not report.problems


def test_public_copy_of_the_karpathy_json_lists_each_test_image_without_captions(tmp_path):
    shutil.copy(FIXTURES / "karpathy_public_copy" / "dataset_flickr8k.json", tmp_path)
    entries = json.loads((tmp_path / "dataset_flickr8k.json").read_text())["images"]
    placeholder_images(tmp_path / "Images", [entry["filename"] for entry in entries])
    report = task.check_data(tmp_path)
    assert report.splits == {"train": 2, "val": 2, "test": 2}
    assert len(report.problems) == 2
    assert all("has 0 captions, needs exactly 5" in line for line in report.problems)
    assert {"2623930900_b9df917b82.jpg", "3490736665_38710f4b91.jpg"} == {
        Path(line.split(":")[0]).name for line in report.problems
    }


# --- every problem, one line each ---------------------------------------------------------------


def test_karpathy_json_with_a_wrong_split_name_is_one_line_naming_the_file(tmp_path):
    karpathy_layout(tmp_path)
    path = tmp_path / "dataset_flickr8k.json"
    document = json.loads(path.read_text())
    for entry in document["images"]:
        entry["split"] = "dev" if entry["split"] == "val" else entry["split"]
    path.write_text(json.dumps(document))
    report = task.check_data(tmp_path)
    assert report.problems == [
        f"{path}: split 'dev' on 12 image(s) (first {split_names()['val'][0]}); use train, val, test or restval"
    ]


def test_karpathy_json_that_is_not_json_is_one_line(tmp_path):
    karpathy_layout(tmp_path)
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(path.read_text()[:-10])
    (problem,) = task.check_data(tmp_path).problems
    assert problem.startswith(f"{path}: not valid JSON") and "\n" not in problem


def test_every_problem_in_the_data_is_listed(tmp_path):
    original_zips(tmp_path)
    images = tmp_path / "Flicker8k_Dataset"
    train, val, test = split_names().values()
    for name in train[:3]:  # three split lines naming missing images
        (images / name).unlink()
    (images / val[0]).write_bytes(b"not an image")  # an unreadable header
    token = tmp_path / "Flickr8k_text" / "Flickr8k.token.txt"
    lines = token.read_text().splitlines()
    dropped = [line for line in lines if line.startswith(f"{test[0]}#4")]
    kept = [line for line in lines if line not in dropped]
    token.write_text("\n".join(kept + ["a line without a tab"]) + "\n")  # 4 captions + a bad line
    report = task.check_data(tmp_path)
    problems = report.problems
    assert len(problems) == 6, problems
    assert sum(f"names {name}, which is not in" in line for line in problems for name in train[:3]) == 3
    assert any(line.startswith(f"{token}:{len(kept) + 1}: expected '<image>#<n><TAB><caption>'") for line in problems)
    assert any(f"{test[0]}: has 4 captions, needs exactly 5" in line for line in problems)
    assert any(f"{val[0]}: unreadable image" in line for line in problems)
    assert all("\n" not in line for line in problems)
    # A trial's build skips the header check (the sweep did it) and refuses in one line.
    with pytest.raises(DataError, match=r"\(and 4 more problems\)"):
        flickr.read_index(tmp_path)


def test_an_image_in_two_splits_is_reported_as_a_leak(tmp_path):
    images_with_split_files(tmp_path)
    train = (tmp_path / "Flickr_8k.trainImages.txt").read_text().split()
    with (tmp_path / "Flickr_8k.testImages.txt").open("a") as file:
        file.write(train[0] + "\n")
    report = task.check_data(tmp_path)
    assert not report.problems
    assert len(report.leaks) == 1 and f"first {train[0]} in train and test" in report.leaks[0]


# --- the CLI ---------------------------------------------------------------------------------


def test_cli_data_check_prints_layout_and_sources_exit_0_and_lists_problems_exit_2(tmp_path):
    data_dir = original_zips(tmp_path / "flickr")
    good = orchestrate("data", "--task", "retrieval", "--check", str(data_dir), cwd=tmp_path)
    assert good.returncode == 0, good.stdout + good.stderr
    assert "layout:   Flickr8k, original zips (Flicker8k_Dataset/ + Flickr8k_text/)" in good.stdout
    assert "splits:   train 48, val 12, test 12 images" in good.stdout
    assert "source:   captions: Flickr8k_text/Flickr8k.token.txt" in good.stdout

    for name in split_names()["train"][:25]:
        (data_dir / "Flicker8k_Dataset" / name).unlink()
    before = sorted(path.name for path in tmp_path.iterdir())
    bad = orchestrate("data", "--task", "retrieval", "--check", str(data_dir), cwd=tmp_path)
    assert bad.returncode == 2
    assert "25 problems:" in bad.stdout and "... and 5 more" in bad.stdout
    assert bad.stdout.count("which is not in") == 20
    assert sorted(path.name for path in tmp_path.iterdir()) == before  # nothing written
