"""The SCAN/SGRAF "precomp" layout: region features and captions per split, checked and read.

Layout under data_dir (as SCAN's data.zip unpacks, e.g. data/f30k_precomp, data/coco_precomp):
    {split}_ims.npy     float32 (rows, regions, feature_dim): bottom-up-attention region features
                        (36 x 2048 in the real data)
    {split}_caps.txt    UTF-8, one caption per line, 5 per image, image-major: line j describes
                        image j // 5
for split in train, dev (the task's "val"), test and, optional, testall (COCO's 5K test set,
whose first 1000 images are its test split). Other files beside them (`*_ids.txt`,
`*_boxes.npy`, ...) are ignored.

Feature rows: SCAN infers `im_div` per split from the row count, and so does this reader:
one row per image (rows = captions / 5, SCAN's im_div 5, the released bottom-up features) or
one row per caption (rows = captions, im_div 1, the older VSE++ precomp files that repeat each
image's features for its 5 captions; image i is then row 5i, as SCAN/SGRAF evaluate it). Any
other row count is refused. The .npy files are opened memory-mapped: a real training split is
several GB, so batches read their rows from disk instead of the whole array being loaded.
Problems raise DataError with one line naming the file and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from tasks.base import DataError

CAPTIONS_PER_IMAGE = 5
# The task's split names -> the file prefix of the precomp layout.
SPLIT_FILES = {"train": "train", "val": "dev", "test": "test", "testall": "testall"}
REQUIRED_SPLITS = ("train", "val", "test")
OPTIONAL_SPLITS = ("testall",)
# SCAN/SGRAF's 1K protocol: COCO's 5000 testall images as 5 folds of 1000 consecutive images.
TESTALL_FOLDS = 5
ROW_PER_IMAGE, ROW_PER_CAPTION = 5, 1  # SCAN's im_div values


def features_path(data_dir: Path, split: str) -> Path:
    return Path(data_dir) / f"{SPLIT_FILES[split]}_ims.npy"


def captions_path(data_dir: Path, split: str) -> Path:
    return Path(data_dir) / f"{SPLIT_FILES[split]}_caps.txt"


def split_present(data_dir: Path, split: str) -> bool:
    """True when either file of the split exists (a split with one file is a problem)."""
    return features_path(data_dir, split).exists() or captions_path(data_dir, split).exists()


@dataclass
class PrecompSplit:
    """One split as read: memory-mapped region features and their captions, image-major.

    region_features: (rows, regions, feature_dim) float array (memory-mapped, read-only);
    captions: 5 per image (only the first images' when the split was cut); im_div: SCAN's
    name, 5 (one feature row per image) or 1 (one row per caption).
    """

    region_features: np.ndarray
    captions: list[str]
    im_div: int

    @property
    def num_images(self) -> int:
        return len(self.captions) // CAPTIONS_PER_IMAGE

    @property
    def caption_image_index(self) -> torch.Tensor:
        """(5N,) long: caption j describes image j // 5."""
        return torch.arange(self.num_images).repeat_interleave(CAPTIONS_PER_IMAGE)

    @property
    def caption_feature_rows(self) -> torch.Tensor:
        """(5N,) long: the feature row caption j is paired with (SCAN: j // im_div)."""
        return torch.arange(len(self.captions)) // self.im_div

    @property
    def image_feature_rows(self) -> torch.Tensor:
        """(N,) long: the feature row of image i (i, or 5i with one row per caption)."""
        return torch.arange(self.num_images) * (CAPTIONS_PER_IMAGE // self.im_div)


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
            f"{path}: expected a (rows, regions, feature_dim) array, got shape "
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
    """The captions of a caps.txt, one per line, stripped; DataError if missing, undecodable
    or holding blank lines (the first one is named, the others counted)."""
    if not path.is_file():
        raise DataError(f"{path}: caption file missing; put the split's {path.name} there")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as error:
        raise DataError(
            f"{path}: not UTF-8 (byte {error.start}); re-save the captions as UTF-8"
        ) from None
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()  # the final newline (SCAN's Flickr30k test_caps.txt has none)
    captions = [line.strip() for line in lines]
    blank = [number for number, caption in enumerate(captions, start=1) if not caption]
    if blank:
        more = f" (and {len(blank) - 1} more blank lines)" if len(blank) > 1 else ""
        raise DataError(
            f"{path}:{blank[0]}: blank caption line{more}; every line must hold one caption"
        )
    return captions


def infer_im_div(features_file: Path, feature_rows: int, captions_file: Path, count: int) -> int:
    """SCAN's im_div of a split from its row and caption counts: 5 when there is one feature
    row per image (rows = captions / 5), 1 when there is one per caption (rows = captions).

    SCAN takes any other count for im_div 5 and misreads the file; here it is a DataError.
    """
    if count % CAPTIONS_PER_IMAGE == 0 and feature_rows * CAPTIONS_PER_IMAGE == count:
        return ROW_PER_IMAGE
    if count % CAPTIONS_PER_IMAGE == 0 and feature_rows == count:
        return ROW_PER_CAPTION
    if feature_rows == count:
        raise DataError(
            f"{captions_file}: {count} caption lines is not a multiple of "
            f"{CAPTIONS_PER_IMAGE} ({CAPTIONS_PER_IMAGE} captions per image); "
            "fix the caption file or the features"
        )
    raise DataError(
        f"{captions_file}: has {count} caption lines but {features_file.name} has "
        f"{feature_rows} rows, which need {CAPTIONS_PER_IMAGE * feature_rows} "
        f"({CAPTIONS_PER_IMAGE} captions per image, one row per image: SCAN's im_div 5) or "
        f"{feature_rows} (one row per caption: im_div 1); fix the caption file or the features"
    )


def load_split(data_dir: Path, split: str, max_images: int | None = None) -> PrecompSplit:
    """A split's memory-mapped features and captions, its im_div inferred as SCAN does.

    max_images: keep only the first images (and their 5 captions each), as SCAN/SGRAF cut
    the dev split to its first 5000 captions; None keeps them all.
    """
    if split not in SPLIT_FILES:
        raise ValueError(f"unknown split {split!r}; use one of {', '.join(SPLIT_FILES)}")
    data_dir = Path(data_dir)
    features = open_region_features(features_path(data_dir, split))
    captions = read_captions(captions_path(data_dir, split))
    im_div = infer_im_div(
        features_path(data_dir, split), features.shape[0], captions_path(data_dir, split),
        len(captions),
    )
    if max_images is not None:
        captions = captions[: max_images * CAPTIONS_PER_IMAGE]
    return PrecompSplit(region_features=features, captions=captions, im_div=im_div)
