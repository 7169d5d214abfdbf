"""The Flickr8k on-disk layout: reading captions and splits, checking them, decoding images.

Layout under data_dir (as distributed, Kaggle or original):
    Images/                         the photos (jpg or png)
    captions.txt                    Kaggle csv, header `image,caption`, one row per caption
      or Flickr8k.token.txt         `<image>#<n><TAB><caption>` per line (captions.txt wins if both)
    Flickr_8k.trainImages.txt       one image file name per line (train split)
    Flickr_8k.devImages.txt         validation split
    Flickr_8k.testImages.txt        test split
Every image of a split must have exactly 5 captions: the retrieval metrics compare N images with
their 5N captions. Any problem raises DataError with one line naming the file and the fix.
How training pairs are drawn from a split is in `tasks/retrieval/sampling.py`.
"""

from __future__ import annotations

import csv
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

from tasks.base import DataError
from tasks.common.image_loading import load_image_uint8

IMAGES_DIR = "Images"
KAGGLE_CAPTIONS_FILE = "captions.txt"
TOKEN_CAPTIONS_FILE = "Flickr8k.token.txt"
SPLIT_FILES = {
    "train": "Flickr_8k.trainImages.txt",
    "val": "Flickr_8k.devImages.txt",
    "test": "Flickr_8k.testImages.txt",
}
CAPTIONS_PER_IMAGE = 5


@dataclass
class RetrievalSplit:
    """One split as loaded: images in split-file order, their captions image-major.

    images: (N, 3, S, S) uint8; captions: 5N strings, caption j of image caption_image_index[j];
    caption_image_index: (5N,) long, equal to arange(N).repeat_interleave(5).
    """

    image_names: list[str]
    images: torch.Tensor
    captions: list[str]
    caption_image_index: torch.Tensor


def first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def parse_kaggle_captions(path: Path) -> dict[str, list[str]]:
    """Captions of a Kaggle `captions.txt` (csv, header `image,caption`): image name -> captions."""
    captions: dict[str, list[str]] = defaultdict(list)
    with path.open(newline="", encoding="utf-8") as file:
        rows = csv.reader(file)
        header = next(rows, None)
        if header is None or [field.strip().lower() for field in header[:2]] != [
            "image",
            "caption",
        ]:
            raise DataError(
                f"{path}: first line must be the header 'image,caption'; fix the file or use Flickr8k.token.txt"
            )
        for line_number, row in enumerate(rows, start=2):
            if not row:
                continue
            if len(row) < 2:
                raise DataError(
                    f"{path}:{line_number}: expected 'image,caption'; fix or delete this line"
                )
            # A caption with an unquoted comma is split by csv; its pieces belong together.
            captions[row[0].strip()].append(",".join(row[1:]).strip())
    return dict(captions)


def parse_token_captions(path: Path) -> dict[str, list[str]]:
    """Captions of a `Flickr8k.token.txt` (`name.jpg#n<TAB>caption`): image name -> captions."""
    captions: dict[str, list[str]] = defaultdict(list)
    with path.open(encoding="utf-8") as file:
        for line_number, line in enumerate(file, start=1):
            if not line.strip():
                continue
            key, tab, caption = line.rstrip("\r\n").partition("\t")
            if not tab:
                raise DataError(
                    f"{path}:{line_number}: expected '<image>#<n><TAB><caption>'; fix or delete this line"
                )
            captions[key.rpartition("#")[0] or key].append(caption.strip())
    return dict(captions)


def read_captions(data_dir: Path) -> dict[str, list[str]]:
    """All captions under data_dir, from captions.txt or else Flickr8k.token.txt."""
    kaggle, token = data_dir / KAGGLE_CAPTIONS_FILE, data_dir / TOKEN_CAPTIONS_FILE
    if kaggle.is_file():
        return parse_kaggle_captions(kaggle)
    if token.is_file():
        return parse_token_captions(token)
    raise DataError(
        f"{data_dir}: no caption file; add {KAGGLE_CAPTIONS_FILE} (csv 'image,caption') or {TOKEN_CAPTIONS_FILE}"
    )


def read_split(data_dir: Path, split: str) -> list[str]:
    """The image file names a split file lists, in order (blank lines skipped)."""
    path = data_dir / SPLIT_FILES[split]
    if not path.is_file():
        raise DataError(f"{path}: split file missing; add it with one image file name per line")
    names = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not names:
        raise DataError(f"{path}: split file lists no images; add one image file name per line")
    return names


def check_split(
    data_dir: Path, split: str, captions: dict[str, list[str]], image_files: set[str]
) -> None:
    """Every image of the split exists, opens as an image (header only) and has 5 captions."""
    split_path = data_dir / SPLIT_FILES[split]
    for name in read_split(data_dir, split):
        image_path = data_dir / IMAGES_DIR / name
        if name not in image_files:
            raise DataError(
                f"{split_path}: names {name}, which is not in {data_dir / IMAGES_DIR}; add the image or remove the line"
            )
        count = len(captions.get(name, []))
        if count != CAPTIONS_PER_IMAGE:
            raise DataError(
                f"{image_path}: has {count} captions, needs exactly {CAPTIONS_PER_IMAGE}; "
                f"fix the caption file or remove it from {split_path.name}"
            )
        try:
            with Image.open(image_path):
                pass
        except Exception as error:  # PIL raises several types for unreadable files
            raise DataError(
                f"{image_path}: unreadable image ({first_line(error)}); replace it or remove it from {split_path.name}"
            ) from None


def check_data(data_dir: Path) -> None:
    """Cheap checks of the whole layout (files present, caption counts, image headers).

    Raises DataError (one line) on the first problem; decodes no pixels.
    """
    data_dir = Path(data_dir)
    if not data_dir.is_dir() or not any(data_dir.iterdir()):
        raise DataError(
            f"{data_dir}: missing or empty; put a Flickr8k-layout dataset there or run the demo"
        )
    images_dir = data_dir / IMAGES_DIR
    if not images_dir.is_dir():
        raise DataError(f"{images_dir}: image folder missing; put the dataset's images there")
    image_files = {path.name for path in images_dir.iterdir()}
    captions = read_captions(data_dir)
    for split in SPLIT_FILES:
        check_split(data_dir, split, captions, image_files)


def load_split(
    data_dir: Path, split: str, image_size: int, captions: dict[str, list[str]]
) -> RetrievalSplit:
    """Decode a split's images once into uint8 tensors and gather its captions image-major.

    captions: from `read_captions`. Assumes `check_data` passed; a file that fails to decode
    still raises DataError.
    """
    data_dir = Path(data_dir)
    names = read_split(data_dir, split)
    images = torch.empty((len(names), 3, image_size, image_size), dtype=torch.uint8)
    for index, name in enumerate(names):
        path = data_dir / IMAGES_DIR / name
        try:
            images[index] = load_image_uint8(path, image_size)
        except Exception as error:  # PIL raises several types for corrupt files
            raise DataError(
                f"{path}: cannot decode image ({first_line(error)}); replace it or remove it from {SPLIT_FILES[split]}"
            ) from None
    split_captions = [caption for name in names for caption in captions[name]]
    return RetrievalSplit(
        image_names=names,
        images=images,
        captions=split_captions,
        caption_image_index=torch.arange(len(names)).repeat_interleave(CAPTIONS_PER_IMAGE),
    )
