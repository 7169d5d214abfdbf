"""The SCAN/SGRAF "precomp" layout: region features and captions per split, checked and read.

Layout under data_dir (as distributed with SCAN and SGRAF, e.g. f30k_precomp):
    {split}_ims.npy     float32 (N, regions, feature_dim): bottom-up-attention region features
                        (36 x 2048 in the real data), one row per image
    {split}_caps.txt    UTF-8, one caption per line, 5 per image: line j describes image j // 5
for split in train, dev (the task's "val") and test. Any problem raises DataError with one line
naming the file and the fix. The .npy files are opened memory-mapped: a real training split is
several GB, so batches read their rows from disk instead of the whole array being loaded.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.base import DataError

CAPTIONS_PER_IMAGE = 5
# The task's split names -> the file prefix of the precomp layout.
SPLIT_FILES = {"train": "train", "val": "dev", "test": "test"}


def features_path(data_dir: Path, split: str) -> Path:
    return Path(data_dir) / f"{SPLIT_FILES[split]}_ims.npy"


def captions_path(data_dir: Path, split: str) -> Path:
    return Path(data_dir) / f"{SPLIT_FILES[split]}_caps.txt"


@dataclass
class PrecompSplit:
    """One split as read: memory-mapped region features and their captions, image-major.

    region_features: (N, regions, feature_dim) float array (memory-mapped, read-only);
    captions: 5N strings; caption_image_index: (5N,) long, caption j -> image j // 5.
    """

    region_features: np.ndarray
    captions: list[str]
    caption_image_index: torch.Tensor

    @property
    def num_images(self) -> int:
        return self.region_features.shape[0]


def open_region_features(path: Path) -> np.ndarray:
    """Memory-map a region-feature .npy; DataError (one line) if missing, corrupt or misshapen.

    Reads only the header; a file shorter than its header promises (a truncated copy) is
    caught here, before any training.
    """
    if not path.is_file():
        raise DataError(f"{path}: region-feature file missing; put the split's {path.name} there")
    try:
        features = np.load(path, mmap_mode="r", allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, OSError, EOFError... for broken files
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise DataError(
            f"{path}: unreadable or truncated .npy ({reason}); re-copy or re-extract the file"
        ) from None
    if not isinstance(features, np.memmap) or features.ndim != 3:
        raise DataError(
            f"{path}: expected a (images, regions, feature_dim) array, got shape "
            f"{getattr(features, 'shape', '?')}; use the precomp region-feature file"
        )
    if not np.issubdtype(features.dtype, np.floating):
        raise DataError(f"{path}: expected float region features, got dtype {features.dtype}")
    expected_bytes = features.offset + features.size * features.dtype.itemsize
    if path.stat().st_size != expected_bytes:
        raise DataError(
            f"{path}: file is {path.stat().st_size} bytes but its header promises "
            f"{expected_bytes} for shape {features.shape}; re-copy the file"
        )
    if 0 in features.shape:
        raise DataError(f"{path}: holds no features (shape {features.shape}); use the full file")
    return features


def read_captions(path: Path) -> list[str]:
    """The captions of a caps.txt, one per line; DataError if missing, undecodable or blank."""
    if not path.is_file():
        raise DataError(f"{path}: caption file missing; put the split's {path.name} there")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 (byte {error.start}); re-save the captions as UTF-8"
        ) from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    if lines and lines[-1] == "":
        lines.pop()  # the final newline
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            raise DataError(
                f"{path}:{number}: blank caption line; every line must hold one caption"
            )
    return [line.strip() for line in lines]


def check_split(data_dir: Path, split: str) -> tuple[np.ndarray, list[str]]:
    """Features and captions of a split agree: 5 caption lines per image.

    Returns (memory-mapped features, captions).
    """
    features = open_region_features(features_path(data_dir, split))
    path = captions_path(data_dir, split)
    captions = read_captions(path)
    count = len(captions)
    if count != CAPTIONS_PER_IMAGE * features.shape[0]:
        raise DataError(
            f"{path}: has {count} caption lines but {features_path(data_dir, split).name} holds "
            f"{features.shape[0]} images, which need exactly "
            f"{CAPTIONS_PER_IMAGE * features.shape[0]} ({CAPTIONS_PER_IMAGE} per image); "
            "fix the caption file or the features"
        )
    return features, captions


def check_data(data_dir: Path) -> None:
    """Cheap checks of the whole layout: files present, .npy headers and sizes, caption counts,
    one region layout (regions x feature_dim) across splits. Raises DataError on the first problem.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put a precomp-layout dataset there "
            "({train,dev,test}_ims.npy and _caps.txt) or run the demo"
        )
    train_shape = None
    for split in SPLIT_FILES:
        shape = check_split(data_dir, split)[0].shape[1:]
        if train_shape is None:
            train_shape = shape
        elif shape != train_shape:
            raise DataError(
                f"{features_path(data_dir, split)}: regions x features {shape} differ from the "
                f"training split's {train_shape}; extract every split with the same detector"
            )


def load_split(data_dir: Path, split: str) -> PrecompSplit:
    """A split's memory-mapped features and captions (checked as in `check_split`)."""
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_FILES)}")
    features, captions = check_split(Path(data_dir), split)
    return PrecompSplit(
        region_features=features,
        captions=captions,
        caption_image_index=torch.arange(features.shape[0]).repeat_interleave(CAPTIONS_PER_IMAGE),
    )
