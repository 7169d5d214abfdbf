"""Real SCAN caption excerpts (tests/fixtures/zh_matching) with small synthetic region features.

The caption files are copied as they are; each split gets a `{split}_ims.npy` of
`REGIONS x FEATURE_DIM` float32 rows, one per image (SCAN's im_div 5) or, with
`rows_per_caption`, each image's row repeated for its 5 captions (im_div 1).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from tasks.zh_matching import data

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "zh_matching"
REGIONS, FEATURE_DIM = 4, 8
SPLIT_SEEDS = {"train": 1, "val": 2, "test": 3, "testall": 4}


def image_features(num_images: int, seed: int) -> np.ndarray:
    """(num_images, REGIONS, FEATURE_DIM) float32 standard-normal features, seeded."""
    rng = np.random.default_rng(seed)
    return rng.standard_normal((num_images, REGIONS, FEATURE_DIM)).astype(np.float32)


def write_split_features(data_dir: Path, split: str, rows_per_caption: bool = False) -> np.ndarray:
    """Features for the split's caption file; returns the per-image features written."""
    captions = data.read_captions(data.captions_path(data_dir, split))
    images = image_features(len(captions) // data.CAPTIONS_PER_IMAGE, seed=SPLIT_SEEDS[split])
    rows = np.repeat(images, data.CAPTIONS_PER_IMAGE, axis=0) if rows_per_caption else images
    np.save(data.features_path(data_dir, split), rows)
    return images


def f30k_scan_layout(root: Path) -> Path:
    """SCAN's own layout under root: data/f30k_precomp (real Flickr30k captions, features
    written here) beside vocab/f30k_precomp_vocab.json. Returns the data directory."""
    shutil.copytree(FIXTURES / "f30k", root, dirs_exist_ok=True)
    data_dir = root / "data" / "f30k_precomp"
    for split in data.REQUIRED_SPLITS:
        write_split_features(data_dir, split)
    return data_dir


def coco_precomp(root: Path, rows_per_caption: bool = False) -> Path:
    """root/coco_precomp: real COCO captions (train, dev, test, testall), features written
    with one row per image, or per caption. No vocabulary json. Returns the data directory."""
    data_dir = root / "coco_precomp"
    shutil.copytree(FIXTURES / "coco_precomp", data_dir, dirs_exist_ok=True)
    for split in (*data.REQUIRED_SPLITS, *data.OPTIONAL_SPLITS):
        write_split_features(data_dir, split, rows_per_caption)
    return data_dir
