"""The demos' pretrained encoders: made here once per machine, cached, copied beside demo data.

Nothing can be downloaded, so the demos make what a real project downloads:
- an image encoder: the demos' small CNN (tasks/common/image_encoders.py), pretrained to name
  the shape and colour of drawn scenes (tasks/common/pretext_shapes.py) that are not any demo's
  images; saved as a state_dict that loads with `torch.load(..., weights_only=True)`;
- a text encoder: a small BERT pretrained with masked-language modelling on a caption corpus of
  its own (the caller gives it; retrieval's demo writes captions of shapes it never draws),
  saved with `save_pretrained` with its tokeniser, so it loads as a real local BERT directory.
Each is built on first use (with a line of progress per stage and epoch) and kept in the cache
(tasks/common/pretrained_cache.py, keyed by its whole recipe), then copied into the demo's data
directory as `pretrained/image_encoder.pt` and `pretrained/text_encoder/`, so the data directory
is self-contained (on a cluster it is what every node reads). The search spaces name them by
those relative paths (tasks/common/local_weights.py).
"""

from __future__ import annotations

import hashlib
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Sequence

import torch

from tasks.common.image_encoders import SMALL_CNN_CHANNELS, SmallCNN
from tasks.common.image_pretraining import pretrain_image_encoder
from tasks.common.local_weights import PRETRAINED_DIR
from tasks.common.mlm_pretraining import (
    MASK_TOKEN_SHARE,
    MASKED_SHARE,
    RANDOM_TOKEN_SHARE,
    MaskedLmRecipe,
    pretrain_masked_lm,
)
from tasks.common.pretext_shapes import LABELS, pretext_pool
from tasks.common.pretrained_cache import cached_build, recipe_key

IMAGE_ENCODER_FILE = f"{PRETRAINED_DIR}/image_encoder.pt"
TEXT_ENCODER_DIR = f"{PRETRAINED_DIR}/text_encoder"
CACHE_NAMESPACE = "demo_encoders"
PRETEXT_VERSION = 1  # bump when pretext_shapes draws differently
WEIGHTS_FILE = "image_encoder.pt"

Progress = Callable[[str], None]


def say(line: str) -> None:
    print(f"[demo encoders] {line}", flush=True)


@dataclass(frozen=True)
class ImageRecipe:
    """How the demos' image encoder is pretrained (every field is part of its cache key)."""

    pool_size: int = 6000
    epochs: int = 4
    batch_size: int = 128
    learning_rate: float = 3e-3
    seed: int = 0


def image_encoder_path(recipe: ImageRecipe = ImageRecipe(), progress: Progress = say) -> Path:
    """The cached image encoder state_dict (pretrained now if not cached yet)."""
    key = recipe_key("image", {**asdict(recipe), "pretext": PRETEXT_VERSION,
                               "channels": list(SMALL_CNN_CHANNELS)})

    def build(directory: Path) -> None:
        started = time.perf_counter()
        progress(f"pretraining the image encoder (small CNN) to name shape and colour in "
                 f"{recipe.pool_size} drawn scenes that no demo trains on; once per machine")
        images, labels = pretext_pool(recipe.pool_size, recipe.seed)
        encoder = SmallCNN()
        accuracy = pretrain_image_encoder(
            encoder, images, labels, LABELS, recipe.epochs, recipe.batch_size,
            recipe.learning_rate, recipe.seed, progress=lambda line: progress(f"image encoder {line}"))
        torch.save(encoder.state_dict(), directory / WEIGHTS_FILE)
        progress(f"image encoder done in {time.perf_counter() - started:.0f} s "
                 f"(held-out accuracy: {', '.join(f'{k} {v:.2f}' for k, v in accuracy.items())})")

    directory, _ = cached_build(CACHE_NAMESPACE, key, build)
    return directory / WEIGHTS_FILE


def text_encoder_dir(corpus: Sequence[str], recipe: MaskedLmRecipe = MaskedLmRecipe(),
                     progress: Progress = say) -> Path:
    """The cached BERT directory pretrained on `corpus` (pretrained now if not cached yet)."""
    corpus_hash = hashlib.sha256("\n".join(corpus).encode("utf-8")).hexdigest()
    key = recipe_key("text", {**asdict(recipe), "corpus": corpus_hash,
                              "masking": [MASKED_SHARE, MASK_TOKEN_SHARE, RANDOM_TOKEN_SHARE]})

    def build(directory: Path) -> None:
        started = time.perf_counter()
        progress(f"pretraining the text encoder (BERT, {recipe.layers} layers) with masked-language "
                 f"modelling on {len(corpus)} captions that no demo trains on; once per machine")
        pretrain_masked_lm(corpus, directory, recipe,
                           progress=lambda line: progress(f"text encoder {line}"))
        progress(f"text encoder done in {time.perf_counter() - started:.0f} s")

    directory, _ = cached_build(CACHE_NAMESPACE, key, build)
    return directory


def place_image_encoder(data_dir: Path, recipe: ImageRecipe = ImageRecipe(),
                        progress: Progress = say) -> Path:
    """Copy the demos' image encoder to `<data_dir>/pretrained/image_encoder.pt`; returns it."""
    target = Path(data_dir) / IMAGE_ENCODER_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(image_encoder_path(recipe, progress), target)
    return target


def place_text_encoder(data_dir: Path, corpus: Sequence[str], recipe: MaskedLmRecipe = MaskedLmRecipe(),
                       progress: Progress = say) -> Path:
    """Copy the text encoder pretrained on `corpus` to `<data_dir>/pretrained/text_encoder/`."""
    target = Path(data_dir) / TEXT_ENCODER_DIR
    if target.exists():
        shutil.rmtree(target)
    shutil.copytree(text_encoder_dir(corpus, recipe, progress), target,
                    ignore=shutil.ignore_patterns(".*"))
    return target
