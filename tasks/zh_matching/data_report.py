"""`check_data` of zh_matching: what a precomp directory holds, every problem listed.

Cheap: .npy headers and file sizes (never the features), the caption files (counted, decoded,
blank lines found) and the vocabulary json. The report names the layout with SCAN's im_div,
images per split, and one source line per choice: captions and feature rows, the dev cut, the
testall protocol, where the vocabulary comes from and how captions are tokenised.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tasks.base import DataReport
from tasks.common.data_problems import ProblemList
from tasks.zh_matching import data
from tasks.zh_matching.caption_tokens import is_chinese
from tasks.zh_matching.config import VAL_MAX_IMAGES
from tasks.zh_matching.scan_vocabulary import (
    find_vocabulary_json,
    read_scan_vocabulary,
    vocabulary_json_candidates,
)

IM_DIV_MEANING = {
    data.ROW_PER_IMAGE: "one feature row per image",
    data.ROW_PER_CAPTION: "one feature row per caption",
}


@dataclass
class CheckedSplit:
    """A split whose features and captions agree: its row shape, captions and im_div."""

    name: str
    feature_shape: tuple[int, ...]
    feature_dtype: np.dtype
    captions: list[str]
    im_div: int

    @property
    def num_images(self) -> int:
        return len(self.captions) // data.CAPTIONS_PER_IMAGE


def check_split(data_dir: Path, split: str, problems: ProblemList) -> CheckedSplit | None:
    """Check one split's two files; every problem goes to `problems`; None if unusable."""
    features = captions = None
    with problems.collecting():
        features = data.open_region_features(data.features_path(data_dir, split))
    with problems.collecting():
        captions = data.read_captions(data.captions_path(data_dir, split))
    if features is None or captions is None:
        return None
    with problems.collecting():
        im_div = data.infer_im_div(
            data.features_path(data_dir, split), features.shape[0],
            data.captions_path(data_dir, split), len(captions),
        )
        return CheckedSplit(split, features.shape[1:], features.dtype, captions, im_div)
    return None


def layout_name(splits: list[CheckedSplit]) -> str:
    """"SCAN/SGRAF precomp, im_div 5 (one feature row per image)", naming each split when
    the splits differ."""
    by_im_div: dict[int, list[str]] = {}
    for split in splits:
        by_im_div.setdefault(split.im_div, []).append(data.SPLIT_FILES[split.name])
    if len(by_im_div) == 1:
        im_div = next(iter(by_im_div))
        return f"SCAN/SGRAF precomp, im_div {im_div} ({IM_DIV_MEANING[im_div]})"
    parts = [f"im_div {im_div} ({', '.join(names)})" for im_div, names in sorted(by_im_div.items())]
    return "SCAN/SGRAF precomp, " + ", ".join(parts)


def dev_cut_line(dev: CheckedSplit) -> str:
    if dev.num_images > VAL_MAX_IMAGES:
        return (
            f"val: the first {VAL_MAX_IMAGES} of dev's {dev.num_images} images "
            f"({VAL_MAX_IMAGES * data.CAPTIONS_PER_IMAGE} captions), as SCAN/SGRAF validate "
            "(config val_max_images; null for all)"
        )
    return (
        f"val: all {dev.num_images} dev images (config val_max_images, default "
        f"{VAL_MAX_IMAGES}, cuts a larger dev split as SCAN/SGRAF do)"
    )


def testall_line(testall: CheckedSplit | None, present: bool) -> str:
    if not present:
        return "testall: none (only COCO ships testall_ims.npy; evaluate val and test)"
    if testall is None:
        return "testall: unusable (see the problems)"
    fold = testall.num_images // data.TESTALL_FOLDS
    return (
        f"testall: {testall.num_images} images, evaluated whole (COCO 5K) and as "
        f"{data.TESTALL_FOLDS} folds of {fold} averaged (COCO 1K): "
        "orchestrate evaluate --split testall"
    )


def vocabulary_line(data_dir: Path, problems: ProblemList) -> str:
    path = find_vocabulary_json(data_dir)
    if path is None:
        name = vocabulary_json_candidates(data_dir)[0].name
        return f"vocabulary: built from train_caps.txt (no SCAN {name} beside the data)"
    with problems.collecting():
        vocabulary = read_scan_vocabulary(path)
        return f"vocabulary: {path} (SCAN vocab json, {len(vocabulary)} tokens)"
    return f"vocabulary: {path} unusable (see the problems)"


def tokens_line(splits: list[CheckedSplit]) -> str:
    captions = [caption for split in splits for caption in split.captions]
    chinese = sum(is_chinese(caption) for caption in captions)
    return (
        f"tokens: {chinese} Chinese captions cut with jieba, {len(captions) - chinese} English "
        "ones lowercased and split at punctuation as SCAN's nltk does"
    )


def check_data(data_dir: Path) -> DataReport:
    """Inspect a precomp directory without reading its features: layout, images per split,
    sources, and every problem found (missing or truncated files, caption counts that fit
    neither im_div, blank lines, regions that differ across splits, a malformed vocab json,
    a testall split that does not divide into 5 folds)."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        return DataReport(
            layout="not recognised",
            unit="images",
            problems=[
                f"{data_dir}: missing or empty; put a precomp-layout dataset there "
                "({train,dev,test}_ims.npy and _caps.txt) or run the demo"
            ],
        )
    problems = ProblemList()
    present = [split for split in data.REQUIRED_SPLITS] + [
        split for split in data.OPTIONAL_SPLITS if data.split_present(data_dir, split)
    ]
    checked = {split: check_split(data_dir, split, problems) for split in present}
    usable = [split for split in checked.values() if split is not None]
    if "train" in checked and checked["train"] is not None:
        train = checked["train"]
        for split in usable:
            if split.feature_shape != train.feature_shape:
                problems.add(
                    f"{data.features_path(data_dir, split.name)}: regions x features "
                    f"{split.feature_shape} differ from the training split's "
                    f"{train.feature_shape}; extract every split with the same detector"
                )
    testall = checked.get("testall")
    if testall is not None and testall.num_images % data.TESTALL_FOLDS:
        problems.add(
            f"{data.features_path(data_dir, 'testall')}: {testall.num_images} images do not "
            f"split into {data.TESTALL_FOLDS} equal folds (COCO's 5000 = 5 x 1000); "
            "use the full testall files"
        )

    sources = []
    if usable:
        counts = ", ".join(
            f"{data.captions_path(data_dir, s.name).name} {len(s.captions)}" for s in usable
        )
        sources.append(f"captions: {counts} (5 per image)")
        regions, dim = usable[0].feature_shape
        sources.append(f"features: {regions} regions x {dim} {usable[0].feature_dtype} per row")
    if checked.get("val") is not None:
        sources.append(dev_cut_line(checked["val"]))
    sources.append(testall_line(testall, "testall" in checked))
    sources.append(vocabulary_line(data_dir, problems))
    if usable:
        sources.append(tokens_line(usable))
    return DataReport(
        layout=layout_name(usable) if usable else "not recognised (no readable precomp split)",
        splits={split.name: split.num_images for split in usable},
        unit="images",
        sources=sources,
        problems=problems.lines,
    )

