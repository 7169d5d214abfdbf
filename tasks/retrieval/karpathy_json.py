"""Karpathy's split files (`dataset_flickr8k.json`, `dataset_flickr30k.json`), as most papers use.

From cs.stanford.edu/people/karpathy/deepimagesent/caption_datasets.zip:
    {"images": [{"filename": "2513260012_03d33305cf.jpg", "split": "train",
                 "sentences": [{"raw": "A black dog ...", "tokens": [...], ...}, ...], ...}, ...],
     "dataset": "flickr8k"}
`split` is train, val, test or restval (restval: COCO's extra training images; joined to train,
as papers do). A json names both the split and the captions of every image, so with a json the
caption files are not read. Every problem is returned, one line each.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path

KARPATHY_FILES = {"dataset_flickr8k.json": "Flickr8k", "dataset_flickr30k.json": "Flickr30k"}
SPLIT_NAMES = {"train": "train", "restval": "train", "val": "val", "test": "test"}


@dataclass
class KarpathySplit:
    """What a Karpathy json says: split -> image file names (file order), and their captions.

    dataset: the json's "dataset" value (e.g. flickr8k), or "" when absent.
    restval_count: images marked restval (counted in train).
    """

    split_images: dict[str, list[str]] = field(default_factory=lambda: {s: [] for s in ("train", "val", "test")})
    captions: dict[str, list[str]] = field(default_factory=dict)
    dataset: str = ""
    restval_count: int = 0
    problems: list[str] = field(default_factory=list)


def sentence_text(sentence: object) -> str | None:
    """A sentence's raw text (or its tokens joined), None when it has neither."""
    if isinstance(sentence, dict):
        raw = sentence.get("raw")
        if isinstance(raw, str) and raw.strip():
            return raw.strip()
        tokens = sentence.get("tokens")
        if isinstance(tokens, list) and tokens and all(isinstance(t, str) for t in tokens):
            return " ".join(tokens)
    return None


def read_karpathy_json(path: Path) -> KarpathySplit:
    """Parse a Karpathy split json; every problem (bad JSON, unknown split names, entries without
    a file name, sentences without text, repeated file names) is one line in `problems`."""
    result = KarpathySplit()
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        result.problems.append(f"{path}: not valid JSON ({error}); download the file again")
        return result
    images = document.get("images") if isinstance(document, dict) else None
    if not isinstance(images, list) or not images:
        result.problems.append(
            f"{path}: no \"images\" list; expected Karpathy's format "
            '{"images": [{"filename", "split", "sentences"}, ...]}'
        )
        return result
    result.dataset = str(document.get("dataset", ""))
    wrong_splits: dict[str, list[str]] = defaultdict(list)
    no_text: list[str] = []
    names = Counter()
    for index, entry in enumerate(images):
        filename = entry.get("filename") if isinstance(entry, dict) else None
        if not isinstance(filename, str) or not filename.strip():
            result.problems.append(
                f"{path}: images[{index}] has no \"filename\"; fix or remove that entry"
            )
            continue
        filename = filename.strip()
        names[filename] += 1
        split = entry.get("split")
        if split not in SPLIT_NAMES:
            wrong_splits[str(split)].append(filename)
            continue
        result.split_images[SPLIT_NAMES[split]].append(filename)
        result.restval_count += split == "restval"
        sentences = entry.get("sentences")
        texts = [sentence_text(s) for s in sentences] if isinstance(sentences, list) else []
        if any(text is None for text in texts):
            no_text.append(filename)
        result.captions[filename] = [text for text in texts if text is not None]
    for split, files in wrong_splits.items():
        result.problems.append(
            f"{path}: split {split!r} on {len(files)} image(s) (first {files[0]}); "
            f"use train, val, test or restval"
        )
    if no_text:
        result.problems.append(
            f"{path}: {len(no_text)} image(s) have a sentence without \"raw\" text (first "
            f"{no_text[0]}); give every sentence its raw text"
        )
    for filename, count in names.items():
        if count > 1:
            result.problems.append(f"{path}: {filename} is listed {count} times; keep one entry")
    return result
