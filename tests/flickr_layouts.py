"""Flickr layouts built from the real annotation excerpts in tests/fixtures/flickr (see its
README) plus placeholder images: what a user has after unpacking each download."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from PIL import Image

from tasks.retrieval.caption_files import parse_kaggle_captions, parse_token_captions
from tasks.retrieval.split_sources import SPLIT_FILES

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "flickr"
TEXT = FIXTURES / "Flickr8k_text"
# In the token file's captions but not in Flickr8k_Dataset.zip (nor in Kaggle's download).
NOT_IN_IMAGE_ZIP = "2258277193_586949ec62.jpg"


def placeholder_images(folder: Path, names, seed: int = 0) -> None:
    """Small noisy JPEGs (different per image, so embeddings differ) named as listed."""
    folder.mkdir(parents=True, exist_ok=True)
    generator = np.random.default_rng(seed)
    for name in sorted(names):
        pixels = generator.integers(0, 256, size=(24, 32, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / name)


def split_names() -> dict[str, list[str]]:
    """split -> image names of the excerpt's split files, in file order."""
    return {
        split: (TEXT / name).read_text().split() for split, name in SPLIT_FILES.items()
    }


def token_captions() -> dict[str, list[str]]:
    return parse_token_captions(TEXT / "Flickr8k.token.txt").captions


def original_zips(root: Path) -> Path:
    """Flicker8k_Dataset/ + Flickr8k_text/, as Flickr8k_Dataset.zip and Flickr8k_text.zip unpack."""
    shutil.copytree(TEXT, root / "Flickr8k_text")
    placeholder_images(root / "Flicker8k_Dataset", set(token_captions()) - {NOT_IN_IMAGE_ZIP})
    return root


def kaggle_download(root: Path) -> Path:
    """Images/ + captions.txt, as Kaggle's Flickr8k download unpacks (no split files)."""
    shutil.copy(FIXTURES / "captions.txt", root / "captions.txt")
    placeholder_images(root / "Images", parse_kaggle_captions(root / "captions.txt").captions)
    return root


def images_with_split_files(root: Path) -> Path:
    """Images/ + captions.txt + the three split files side by side."""
    kaggle_download(root)
    for name in SPLIT_FILES.values():
        shutil.copy(TEXT / name, root / name)
    return root


def write_karpathy_json(
    path: Path, split_of: dict[str, str], captions: dict[str, list[str]], dataset: str
) -> None:
    """A json in Karpathy's schema (images: filename, split, sentences raw/tokens; dataset)."""
    images = [
        {
            "filename": name,
            "imgid": imgid,
            "split": split,
            "sentences": [
                {"raw": text, "tokens": text.lower().rstrip(" .").split(), "imgid": imgid}
                for text in captions[name]
            ],
        }
        for imgid, (name, split) in enumerate(split_of.items())
    ]
    path.write_text(json.dumps({"images": images, "dataset": dataset}))


def karpathy_layout(root: Path, dataset: str = "flickr8k", images_folder: str = "Images") -> Path:
    """Images + dataset_<dataset>.json written in Karpathy's schema from the real excerpt's
    split and captions (the real Flickr8k json follows the published split files)."""
    split_of = {name: split for split, names in split_names().items() for name in names}
    write_karpathy_json(root / f"dataset_{dataset}.json", split_of, token_captions(), dataset)
    placeholder_images(root / images_folder, split_of)
    return root
