"""SCAN's precomp layout as released, on real caption excerpts: im_div 1 and 5, the dev cut,
testall (COCO 5K and the 5-fold 1K protocol) and SCAN's vocabulary json."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from tasks.base import DataError
from tasks.zh_matching import ZhMatchingConfig, data, task
from tasks.zh_matching.scan_vocabulary import find_vocabulary_json, vocabulary_json_candidates
from tasks.zh_matching.task import encode_split
from tasks.zh_matching.vocabulary import build_vocabulary
from tests.zh_matching_fixture import coco_precomp, f30k_scan_layout

CONFIG = dict(batch_size=8, embed_dim=16, word_dim=16)
COCO_SPLITS = {"train": 40, "val": 10, "test": 10, "testall": 20}


def build(data_dir: Path, **overrides):
    return task.build(ZhMatchingConfig(**CONFIG, **overrides), data_dir, torch.device("cpu"))


def source(report, prefix: str) -> str:
    [line] = [line for line in report.sources if line.startswith(prefix)]
    return line


# --- SCAN's vocabulary json ----------------------------------------------------------------------


def test_scan_layout_report_names_layout_counts_and_the_vocabulary_json(tmp_path):
    data_dir = f30k_scan_layout(tmp_path)
    report = task.check_data(data_dir)
    assert report.problems == []
    assert report.layout == "SCAN/SGRAF precomp, im_div 5 (one feature row per image)"
    assert report.splits == {"train": 9, "val": 10, "test": 10} and report.unit == "images"
    vocabulary_json = (tmp_path / "vocab" / "f30k_precomp_vocab.json").resolve()
    assert source(report, "vocabulary:") == (
        f"vocabulary: {vocabulary_json} (SCAN vocab json, 500 tokens)"
    )
    assert source(report, "captions:") == (
        "captions: train_caps.txt 45, dev_caps.txt 50, test_caps.txt 50 (5 per image)"
    )
    assert source(report, "testall:").startswith("testall: none")
    assert source(report, "tokens:").startswith("tokens: 0 Chinese captions cut with jieba, 145 English")


def test_build_takes_scans_vocabulary_json_and_encodes_captions_with_its_ids(tmp_path):
    data_dir = f30k_scan_layout(tmp_path)
    setup = build(data_dir, min_word_count=50)  # min_word_count plays no part with the json
    word2idx = json.loads((tmp_path / "vocab" / "f30k_precomp_vocab.json").read_text())["word2idx"]
    vocabulary = setup.extras["vocabulary"]
    assert vocabulary.tokens == sorted(word2idx, key=word2idx.get)
    # The first real train caption: SCAN numbered its words in first-seen order, ids 4 to 20.
    first = data.read_captions(data.captions_path(data_dir, "train"))[0]
    assert first == "Two young guys with shaggy hair look at their hands while hanging out in the yard ."
    assert vocabulary.encode(first, max_tokens=40) == [1, *range(4, 21), 2]
    state = setup.model.state_dict()
    assert state["caption_encoder.embedding.weight"].shape[0] == 500
    assert state["vocabulary_fingerprint"].tolist() == [500, vocabulary.fingerprint()]


def test_without_a_vocabulary_json_the_vocabulary_is_built_and_the_report_says_so(tmp_path):
    data_dir = f30k_scan_layout(tmp_path)
    (tmp_path / "vocab" / "f30k_precomp_vocab.json").unlink()
    assert source(task.check_data(data_dir), "vocabulary:") == (
        "vocabulary: built from train_caps.txt (no SCAN f30k_precomp_vocab.json beside the data)"
    )
    train = data.read_captions(data.captions_path(data_dir, "train"))
    assert build(data_dir).extras["vocabulary"] == build_vocabulary(train)


def test_vocabulary_json_is_looked_up_beside_the_data_then_in_scans_vocab_folder(tmp_path):
    data_dir = f30k_scan_layout(tmp_path)
    resolved = data_dir.resolve()
    assert vocabulary_json_candidates(data_dir) == [
        resolved / "f30k_precomp_vocab.json",
        resolved / "vocab" / "f30k_precomp_vocab.json",
        resolved.parent / "vocab" / "f30k_precomp_vocab.json",
        resolved.parent.parent / "vocab" / "f30k_precomp_vocab.json",
    ]
    assert find_vocabulary_json(data_dir) == tmp_path.resolve() / "vocab" / "f30k_precomp_vocab.json"
    (data_dir / "vocab").mkdir()
    shutil.copy(tmp_path / "vocab" / "f30k_precomp_vocab.json", data_dir / "vocab")
    assert find_vocabulary_json(data_dir) == resolved / "vocab" / "f30k_precomp_vocab.json"


MALFORMED_VOCABULARIES = [
    ('{"word2idx": {"<pad>": 0,', r"not valid JSON \(Expecting .* at line 1 column"),
    ('{"idx2word": {"0": "<pad>"}, "idx": 1}', r"no word2idx mapping"),
    ('{"word2idx": {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3, "dog": 5}}',
     r"word2idx ids are not 0\.\.4 \(id 4 is missing\)"),
    ('{"word2idx": {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": "3"}}',
     r"word2idx id of '<unk>' is not an integer"),
    ('{"word2idx": {"<start>": 0, "<pad>": 1, "<end>": 2, "<unk>": 3}}',
     r"ids 0-3 are <start> <pad> <end> <unk>, not SCAN's special tokens"),
    ('{"word2idx": {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3}, "idx": 7}',
     r"idx is 7 but word2idx holds 4 words"),
    ('{"word2idx": {"<pad>": 0, "<start>": 1, "<end>": 2, "<unk>": 3},'
     ' "idx2word": {"0": "<pad>", "1": "<start>", "2": "<unk>", "3": "<end>"}}',
     r"idx2word\['2'\] = '<unk>' disagrees with word2idx"),
]


@pytest.mark.parametrize("content, problem", MALFORMED_VOCABULARIES)
def test_a_malformed_vocabulary_json_is_one_problem_naming_the_file(tmp_path, content, problem):
    data_dir = f30k_scan_layout(tmp_path)
    path = tmp_path / "vocab" / "f30k_precomp_vocab.json"
    path.write_text(content, encoding="utf-8")
    report = task.check_data(data_dir)
    assert len(report.problems) == 1 and "\n" not in report.problems[0]
    assert report.problems[0].startswith(f"{path.resolve()}: ")
    assert re.search(problem, report.problems[0]), report.problems[0]
    assert "re-extract SCAN's vocab.zip" in report.problems[0]
    with pytest.raises(DataError, match=problem):
        build(data_dir)


# --- im_div ------------------------------------------------------------------------------------


def test_rows_per_image_and_rows_per_caption_are_inferred_as_scans_im_div(tmp_path):
    per_image = task.check_data(coco_precomp(tmp_path / "a"))
    per_caption = task.check_data(coco_precomp(tmp_path / "b", rows_per_caption=True))
    assert per_image.layout == "SCAN/SGRAF precomp, im_div 5 (one feature row per image)"
    assert per_caption.layout == "SCAN/SGRAF precomp, im_div 1 (one feature row per caption)"
    assert per_image.splits == per_caption.splits == COCO_SPLITS
    assert per_image.problems == per_caption.problems == []


def test_caption_rows_follow_scans_index_div_im_div_and_images_are_every_fifth_row(tmp_path):
    split = data.load_split(coco_precomp(tmp_path, rows_per_caption=True), "val")
    assert split.im_div == 1 and split.region_features.shape[0] == 50
    assert split.caption_feature_rows.tolist() == list(range(50))
    assert split.image_feature_rows.tolist() == [0, 5, 10, 15, 20, 25, 30, 35, 40, 45]
    assert split.caption_image_index.tolist() == [i // 5 for i in range(50)]
    split = data.load_split(coco_precomp(tmp_path / "b"), "val")
    assert split.im_div == 5 and split.region_features.shape[0] == 10
    assert split.caption_feature_rows.tolist() == [i // 5 for i in range(50)]
    assert split.image_feature_rows.tolist() == list(range(10))


def test_one_dataset_in_either_im_div_trains_and_scores_identically(tmp_path):
    per_image = build(coco_precomp(tmp_path / "a"))
    per_caption = build(coco_precomp(tmp_path / "b", rows_per_caption=True))
    for batch_a, batch_b in zip(per_image.train_batches, per_caption.train_batches, strict=True):
        assert all(torch.equal(a, b) for a, b in zip(batch_a, batch_b))
    for split in ("val", "test", "testall"):
        assert task.evaluate(per_image, split) == task.evaluate(per_caption, split)


def test_rows_that_fit_neither_im_div_are_one_problem_naming_both_counts(tmp_path):
    data_dir = coco_precomp(tmp_path)
    np.save(data.features_path(data_dir, "test"), np.zeros((11, 4, 8), np.float32))
    report = task.check_data(data_dir)
    assert report.problems == [
        f"{data.captions_path(data_dir, 'test')}: has 50 caption lines but test_ims.npy has 11 "
        "rows, which need 55 (5 captions per image, one row per image: SCAN's im_div 5) or 11 "
        "(one row per caption: im_div 1); fix the caption file or the features"
    ]


def test_rows_per_caption_need_a_multiple_of_five_captions(tmp_path):
    data_dir = coco_precomp(tmp_path)
    lines = data.read_captions(data.captions_path(data_dir, "test"))[:48]
    data.captions_path(data_dir, "test").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(data.features_path(data_dir, "test"), np.zeros((48, 4, 8), np.float32))
    [problem] = task.check_data(data_dir).problems
    assert "test_caps.txt: 48 caption lines is not a multiple of 5" in problem


# --- the dev cut -------------------------------------------------------------------------------


def test_val_is_the_first_val_max_images_dev_images_and_their_captions(tmp_path):
    data_dir = coco_precomp(tmp_path)
    whole = build(data_dir, val_max_images=None)
    cut = build(data_dir, val_max_images=4)
    assert task.evaluate(whole, "val")["chance/mean_r1"] == pytest.approx(1 / 10)
    assert task.evaluate(cut, "val")["chance/mean_r1"] == pytest.approx(1 / 4)
    whole_scores = encode_split(whole.model, whole.extras["splits"]["val"], "cpu").similarity
    cut_scores = encode_split(cut.model, cut.extras["splits"]["val"], "cpu").similarity
    assert cut_scores.shape == (4, 20)
    assert torch.allclose(cut_scores, whole_scores[:4, :20])  # the first 4 images, 20 captions
    assert task.evaluate(cut, "test")["chance/mean_r1"] == pytest.approx(1 / 10)  # val only


def test_default_dev_cut_is_scans_first_5000_captions_and_the_report_says_so(tmp_path):
    data_dir = coco_precomp(tmp_path)
    assert ZhMatchingConfig().val_max_images == 1000
    assert source(task.check_data(data_dir), "val:").startswith("val: all 10 dev images")
    np.save(data.features_path(data_dir, "val"), np.zeros((1014, 4, 8), np.float32))
    lines = [f"caption {k} of image {i}" for i in range(1014) for k in range(5)]
    data.captions_path(data_dir, "val").write_text("\n".join(lines) + "\n", encoding="utf-8")
    report = task.check_data(data_dir)
    assert report.splits["val"] == 1014  # the split's own size; the cut is a source line
    assert source(report, "val:") == (
        "val: the first 1000 of dev's 1014 images (5000 captions), as SCAN/SGRAF validate "
        "(config val_max_images; null for all)"
    )


# --- testall: COCO 5K and the 5-fold 1K protocol -----------------------------------------------


def test_testall_fold5_is_the_mean_of_scoring_each_fold_as_its_own_test_split(tmp_path):
    data_dir = coco_precomp(tmp_path / "coco")
    setup = build(data_dir)
    metrics = task.evaluate(setup, "testall")
    assert metrics["chance/mean_r1"] == pytest.approx(1 / 20)  # COCO 5K: the whole split
    assert metrics["fold5/chance/mean_r1"] == pytest.approx(1 / 4)  # 1K: 5 folds of 4 images
    testall_rows = np.load(data.features_path(data_dir, "testall"))
    testall_lines = data.read_captions(data.captions_path(data_dir, "testall"))
    per_fold = []
    for fold in range(5):
        fold_dir = tmp_path / f"fold{fold}"
        shutil.copytree(data_dir, fold_dir)
        np.save(data.features_path(fold_dir, "test"), testall_rows[4 * fold : 4 * fold + 4])
        data.captions_path(fold_dir, "test").write_text(
            "\n".join(testall_lines[20 * fold : 20 * fold + 20]) + "\n", encoding="utf-8"
        )
        fold_setup = build(fold_dir)
        fold_setup.model.load_state_dict(setup.model.state_dict())
        per_fold.append(task.evaluate(fold_setup, "test"))
    for name in ("i2t_r1", "i2t_r5", "t2i_r1", "t2i_r10", "mean_r1", "rsum", "mrr"):
        mean = sum(fold[name] for fold in per_fold) / 5
        assert metrics[f"fold5/{name}"] == pytest.approx(mean, abs=1e-6), name


def test_a_dataset_without_testall_refuses_to_evaluate_it_in_one_line(tmp_path):
    setup = build(f30k_scan_layout(tmp_path))
    with pytest.raises(DataError, match=r"testall_ims\.npy: no testall split in .*evaluate val or test"):
        task.evaluate(setup, "testall")


def test_testall_that_does_not_split_into_five_folds_or_lacks_a_file_is_a_problem(tmp_path):
    data_dir = coco_precomp(tmp_path)
    lines = data.read_captions(data.captions_path(data_dir, "testall"))[:95]
    data.captions_path(data_dir, "testall").write_text("\n".join(lines) + "\n", encoding="utf-8")
    np.save(data.features_path(data_dir, "testall"), np.zeros((19, 4, 8), np.float32))
    [problem] = task.check_data(data_dir).problems
    assert problem.startswith(f"{data.features_path(data_dir, 'testall')}: 19 images do not split")
    data.captions_path(data_dir, "testall").unlink()
    [problem] = task.check_data(data_dir).problems
    assert "testall_caps.txt: caption file missing" in problem
