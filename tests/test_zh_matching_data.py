"""zh_matching's precomp layout (every problem listed, each naming its file), caption -> image
mapping and vocabulary."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.base import DataError
from tasks.common.retrieval_metrics import retrieval_metrics
from tasks.zh_matching import data, task
from tasks.zh_matching.task import EncodedSplit, shuffled_mean_r1
from tasks.zh_matching.caption_tokens import caption_tokens
from tasks.zh_matching.vocabulary import (
    SPECIAL_TOKENS,
    Vocabulary,
    build_vocabulary,
    load_vocabulary,
    save_vocabulary,
)

SIZES = {"train": 3, "val": 2, "test": 2}


def write_tiny_precomp(root: Path, regions: int = 4, dim: int = 8) -> None:
    """A minimal precomp layout: image i of a split has features i and captions naming 物体i."""
    root.mkdir(parents=True, exist_ok=True)
    for split, count in SIZES.items():
        features = np.broadcast_to(
            np.arange(count, dtype=np.float32)[:, None, None], (count, regions, dim)
        )
        np.save(data.features_path(root, split), features)
        lines = [f"第{k}句：图里有物体{i}" for i in range(count) for k in range(5)]
        data.captions_path(root, split).write_text("\n".join(lines) + "\n", encoding="utf-8")


def one_line_problem(directory: Path, match: str) -> str:
    """check_data reports exactly one problem, one line, matching `match`; build refuses it."""
    report = task.check_data(directory)
    assert len(report.problems) == 1, report.problems
    problem = report.problems[0]
    assert "\n" not in problem
    assert re.search(match, problem), problem
    with pytest.raises(DataError, match=match):
        report.raise_if_unusable()
    return problem


def test_tiny_layout_passes_and_dev_is_the_val_split(tmp_path):
    write_tiny_precomp(tmp_path)
    report = task.check_data(tmp_path)
    assert report.problems == [] and report.splits == {"train": 3, "val": 2, "test": 2}
    assert report.unit == "images" and "im_div 5" in report.layout
    val = data.load_split(tmp_path, "val")
    assert val.region_features.shape == (2, 4, 8) and len(val.captions) == 10
    assert data.features_path(tmp_path, "val").name == "dev_ims.npy"


def test_caption_line_j_belongs_to_image_j_div_5_not_j_mod_5(tmp_path):
    # The seed-report bug: evaluating with caption j -> image j % 5 scrambles the pairs.
    write_tiny_precomp(tmp_path)
    split = data.load_split(tmp_path, "train")
    assert split.caption_image_index.tolist() == [0] * 5 + [1] * 5 + [2] * 5
    # An oracle that matches a caption to the image its text names scores perfectly only under
    # the loader's mapping.
    oracle = torch.tensor(
        [[float(f"物体{i}" in caption) for caption in split.captions] for i in range(3)]
    )
    assert retrieval_metrics(oracle, split.caption_image_index)["mean_r1"] == 1.0
    wrong_mapping = torch.arange(15) % 3
    assert retrieval_metrics(oracle, wrong_mapping)["mean_r1"] < 0.5


def test_shuffled_probes_move_whole_caption_groups_and_images():
    index = torch.arange(6).repeat_interleave(5)
    perfect = (index[None, :] == torch.arange(6)[:, None]).float()
    encoded = EncodedSplit(perfect, torch.zeros(6, 2), torch.zeros(30, 2), index)
    assert shuffled_mean_r1(encoded) == {"image_shuffled/mean_r1": 0.0, "text_shuffled/mean_r1": 0.0}


@pytest.mark.parametrize("split", ["train", "val", "test"])
def test_missing_files_are_named(tmp_path, split):
    write_tiny_precomp(tmp_path)
    data.features_path(tmp_path, split).unlink()
    one_line_problem(tmp_path, rf"{data.SPLIT_FILES[split]}_ims\.npy: region-feature file missing")
    write_tiny_precomp(tmp_path)
    data.captions_path(tmp_path, split).unlink()
    one_line_problem(tmp_path, rf"{data.SPLIT_FILES[split]}_caps\.txt: caption file missing")


def test_caption_count_not_five_per_image_is_named(tmp_path):
    write_tiny_precomp(tmp_path)
    path = data.captions_path(tmp_path, "test")
    path.write_text("\n".join(path.read_text(encoding="utf-8").splitlines()[:9]) + "\n", encoding="utf-8")
    one_line_problem(
        tmp_path,
        r"test_caps\.txt: has 9 caption lines but test_ims\.npy has 2 rows, which need 10 "
        r"\(5 captions per image, one row per image: SCAN's im_div 5\) or 2 \(one row per caption",
    )


def test_truncated_npy_is_named(tmp_path):
    write_tiny_precomp(tmp_path)
    path = data.features_path(tmp_path, "train")
    path.write_bytes(path.read_bytes()[:-40])
    one_line_problem(tmp_path, r"train_ims\.npy: .*truncated|train_ims\.npy: file is")


def test_corrupt_npy_and_wrong_shapes_are_named(tmp_path):
    write_tiny_precomp(tmp_path)
    path = data.features_path(tmp_path, "val")
    path.write_bytes(b"this is not a numpy file at all" * 10)
    one_line_problem(tmp_path, r"dev_ims\.npy: unreadable or truncated \.npy")
    np.save(path, np.zeros((2, 8), np.float32))
    one_line_problem(tmp_path, r"dev_ims\.npy: expected a \(rows, regions, feature_dim\) array")
    np.save(path, np.zeros((2, 4, 8), np.int32))
    one_line_problem(tmp_path, r"dev_ims\.npy: expected float region features")
    np.save(path, np.zeros((2, 5, 8), np.float32))
    one_line_problem(tmp_path, r"dev_ims\.npy: regions x features \(5, 8\) differ")


def test_blank_or_undecodable_caption_lines_are_named(tmp_path):
    write_tiny_precomp(tmp_path)
    path = data.captions_path(tmp_path, "val")
    lines = path.read_text(encoding="utf-8").splitlines()
    path.write_text("\n".join(lines[:3] + ["  "] + lines[4:]) + "\n", encoding="utf-8")
    one_line_problem(tmp_path, r"dev_caps\.txt:4: blank caption line")
    path.write_bytes("图里有物体".encode("gbk") + b"\n")
    one_line_problem(tmp_path, r"dev_caps\.txt: not UTF-8")


def test_empty_or_missing_directory_is_one_line(tmp_path):
    message = one_line_problem(tmp_path, "missing or empty")
    assert str(tmp_path) in message
    one_line_problem(tmp_path / "absent", "missing or empty")


def test_every_problem_is_listed_not_only_the_first(tmp_path):
    write_tiny_precomp(tmp_path)
    truncated = data.features_path(tmp_path, "train")
    truncated.write_bytes(truncated.read_bytes()[:-40])
    data.captions_path(tmp_path, "val").write_text("一句\n\n", encoding="utf-8")
    data.captions_path(tmp_path, "test").unlink()
    report = task.check_data(tmp_path)
    assert len(report.problems) == 3, report.problems
    assert "train_ims.npy" in report.problems[0] and "dev_caps.txt:2: blank" in report.problems[1]
    assert "test_caps.txt: caption file missing" in report.problems[2]
    with pytest.raises(DataError, match=r"train_ims\.npy.*\(and 2 more problems\)"):
        report.raise_if_unusable()


# --- vocabulary ---------------------------------------------------------------------------------

CAPTIONS = ["路边有一辆红色的汽车", "一只白色的狗在路边", "红色汽车和白色的狗"]


def test_vocabulary_is_specials_then_words_by_count_then_code_point():
    vocabulary = build_vocabulary(CAPTIONS)
    words = [word for caption in CAPTIONS for word in caption_tokens(caption)]
    assert vocabulary.tokens[:4] == list(SPECIAL_TOKENS) and vocabulary.tokens[0] == "<pad>"
    rest = vocabulary.tokens[4:]
    assert set(rest) == set(words)
    assert rest == sorted(rest, key=lambda word: (-words.count(word), word))
    assert build_vocabulary(reversed(CAPTIONS)) == vocabulary  # order of captions is irrelevant
    frequent = build_vocabulary(CAPTIONS, min_word_count=2)
    assert all(words.count(word) >= 2 for word in frequent.tokens[4:])


def test_encode_wraps_in_start_end_maps_unknown_and_truncates():
    vocabulary = build_vocabulary(CAPTIONS)
    ids = vocabulary.encode("红色的猫", max_tokens=10)
    assert ids[0] == vocabulary.ids["<start>"] and ids[-1] == vocabulary.ids["<end>"]
    assert vocabulary.tokens[ids[1]] == "红色" and vocabulary.ids["<unk>"] in ids
    assert len(vocabulary.encode(CAPTIONS[0], max_tokens=4)) == 4


def test_vocabulary_round_trips_through_json_and_bad_files_are_refused(tmp_path):
    vocabulary = build_vocabulary(CAPTIONS)
    path = tmp_path / "vocab.json"
    save_vocabulary(vocabulary, path)
    assert "红色" in path.read_text(encoding="utf-8")  # readable, not \\u-escaped
    loaded = load_vocabulary(path)
    assert loaded == vocabulary and loaded.fingerprint() == vocabulary.fingerprint()
    path.write_text('["a", "b"]', encoding="utf-8")
    with pytest.raises(ValueError, match="must start with <pad> <start> <end> <unk>"):
        load_vocabulary(path)
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match="not a readable vocabulary json"):
        load_vocabulary(path)
    other = Vocabulary([*SPECIAL_TOKENS, "x"])
    assert other.fingerprint() != Vocabulary([*SPECIAL_TOKENS, "y"]).fingerprint()


def test_jieba_initialisation_writes_nothing_to_the_terminal(capfd):
    import jieba

    jieba.Tokenizer().initialize()  # a fresh dictionary load, as in each new trial process
    assert caption_tokens("一辆红色的汽车停在路边")[:3] == ["一辆", "红色", "的"]
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
