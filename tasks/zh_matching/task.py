"""The `zh_matching` task: Chinese image-text matching on precomputed region features (the
SCAN/SGRAF setting), with SCAN text-to-image attention or pooled cosine similarity.

The orchestrator drives it only through the `tasks.base.Task` interface: this module wires the
data (data.py, data_report.py, batches.py), the vocabulary (scan_vocabulary.py, vocabulary.py,
caption_tokens.py), the model (model.py, similarity.py), the loss (loss.py) and the shared
metrics and probes (tasks/common/) together.

Splits: "val" is the dev split, cut to its first `val_max_images` images; "test" the test split;
"testall" (COCO) reports its whole-split metrics (the 5K test) and, prefixed `fold5/`, their
mean over 5 folds of consecutive images (the 1K test, SCAN's `evalrank(..., fold5=True)`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from tasks.base import INF, DataError, DataReport, TrialSetup
from tasks.common.embedding_stats import (
    EMBEDDING_PROBE_BOUNDS,
    PAIR_SIMILARITY_BOUNDS,
    embedding_statistics,
    pair_similarities,
)
from tasks.common.figures import RetrievedItem
from tasks.common.modality_shuffle import derangement
from tasks.common.model_output_cache import ModelOutputCache
from tasks.common.retrieval_figures import retrieval_figures
from tasks.common.retrieval_folds import fold_averaged_retrieval_metrics
from tasks.common.retrieval_metrics import (
    RETRIEVAL_METRIC_BOUNDS,
    chance_metrics,
    retrieval_metrics,
)
from tasks.zh_matching import data, data_report, demo
from tasks.zh_matching.batches import RegionCaptionPairs, pad_token_ids, training_batches
from tasks.zh_matching.config import ZhMatchingConfig
from tasks.zh_matching.loss import matching_loss
from tasks.zh_matching.model import RegionWordMatcher
from tasks.zh_matching.scan_vocabulary import find_vocabulary_json, read_scan_vocabulary
from tasks.zh_matching.similarity import pooled_regions, pooled_words, similarity_in_chunks
from tasks.zh_matching.vocabulary import Vocabulary, build_vocabulary

EVAL_IMAGE_CHUNK = 128
EVAL_CAPTION_CHUNK = 512
PROBE_SHUFFLE_SEED = 0
FOLDS_PREFIX = f"fold{data.TESTALL_FOLDS}/"

VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "train/loss": (0.0, INF),
    "train/vse_hinge": (0.0, INF),
    "train/infonce": (0.0, INF),
    "train/hard_negative_hinge": (0.0, INF),
    **RETRIEVAL_METRIC_BOUNDS,
    # The same metrics on testall, whole and averaged over its folds.
    **{
        key.replace("val/", prefix, 1): bounds
        for key, bounds in RETRIEVAL_METRIC_BOUNDS.items()
        if key.startswith("val/")
        for prefix in ("testall/", f"testall/{FOLDS_PREFIX}")
    },
    "*/chance/*": (0.0, 1.0),
    "*/samples": (1.0, INF),
    **EMBEDDING_PROBE_BOUNDS,
    "probe/*_shuffled/mean_r1": (0.0, 1.0),
    **PAIR_SIMILARITY_BOUNDS,
}


@dataclass
class EncodedSplit:
    """One evaluation split scored by the model: what evaluate and probe read.

    similarity: (N, 5N) image-caption scores; image_features: (N, d) mean region feature;
    caption_features: (5N, d) mean word feature; caption_image_index: (5N,) caption -> image.
    """

    similarity: torch.Tensor
    image_features: torch.Tensor
    caption_features: torch.Tensor
    caption_image_index: torch.Tensor

    @property
    def num_images(self) -> int:
        return self.similarity.shape[0]


@dataclass
class EvaluationSplit:
    """A split ready to score: memory-mapped region features and padded caption ids."""

    region_features: np.ndarray
    image_feature_rows: torch.Tensor  # (N,) long, image i -> its row of region_features
    token_ids: torch.Tensor  # (5N, L) long, padded with 0
    lengths: torch.Tensor  # (5N,) long
    caption_image_index: torch.Tensor  # (5N,) long, caption j -> image j // 5


def read_features(split: EvaluationSplit, start: int, device: Any) -> torch.Tensor:
    """Images start .. start + EVAL_IMAGE_CHUNK of a split, read from its memory-mapped rows,
    as float32 on device."""
    rows = split.image_feature_rows[start : start + EVAL_IMAGE_CHUNK].numpy()
    chunk = np.asarray(split.region_features[rows], dtype=np.float32)
    return torch.from_numpy(chunk).to(device)


@torch.no_grad()
def encode_split(model: RegionWordMatcher, split: EvaluationSplit, device: Any) -> EncodedSplit:
    """Score every image of a split against every caption, in eval mode, in chunks.

    Returns float32 CPU tensors. Each module's train/eval flag is restored afterwards.
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        regions = torch.cat([
            model.encode_regions(read_features(split, start, device)).float()
            for start in range(0, len(split.image_feature_rows), EVAL_IMAGE_CHUNK)
        ])
        words, masks = [], []
        for start in range(0, len(split.token_ids), EVAL_CAPTION_CHUNK):
            chunk_words, chunk_mask = model.encode_captions(
                split.token_ids[start : start + EVAL_CAPTION_CHUNK].to(device),
                split.lengths[start : start + EVAL_CAPTION_CHUNK],
            )
            words.append(chunk_words.float())
            masks.append(chunk_mask)
        words, word_mask = torch.cat(words), torch.cat(masks)
        similarity = similarity_in_chunks(model.similarity, regions, words, word_mask)
    finally:
        for module, training in modes.items():
            module.training = training
    return EncodedSplit(
        similarity=similarity.float().cpu(),
        image_features=pooled_regions(regions).cpu(),
        caption_features=pooled_words(words, word_mask).cpu(),
        caption_image_index=split.caption_image_index,
    )


def shuffled_mean_r1(encoded: EncodedSplit) -> dict[str, float]:
    """mean R@1 with each modality moved across the split (a derangement of the images).

    The score of (image, caption) depends on those two inputs only, so shuffling the images'
    inputs permutes the similarity matrix's rows, and moving each image's 5 captions to another
    image permutes its column groups.
    """
    permutation = derangement(encoded.num_images, PROBE_SHUFFLE_SEED)
    columns = (
        permutation[:, None] * data.CAPTIONS_PER_IMAGE + torch.arange(data.CAPTIONS_PER_IMAGE)
    ).flatten()
    index = encoded.caption_image_index
    images_moved = retrieval_metrics(encoded.similarity[permutation], index)
    captions_moved = retrieval_metrics(encoded.similarity[:, columns], index)
    return {
        "image_shuffled/mean_r1": images_moved["mean_r1"],
        "text_shuffled/mean_r1": captions_moved["mean_r1"],
    }


def images_to_load(config: ZhMatchingConfig, split: str) -> int | None:
    """How many of an evaluation split's first images to read (None: all): val is cut to
    `val_max_images`, every split to `max_samples_per_split`, testall to whole folds."""
    limits = [config.max_samples_per_split]
    if split == "val":
        limits.append(config.val_max_images)
    present = [limit for limit in limits if limit is not None]
    if not present:
        return None
    limit = min(present)
    if split == "testall" and limit >= data.TESTALL_FOLDS:
        limit -= limit % data.TESTALL_FOLDS
    return limit


class ZhMatchingTask:
    """Chinese image-text matching (SCAN setting); target metric val/mean_r1 (higher is better)."""

    name = "zh_matching"
    metric = "val/mean_r1"
    mode = "max"
    config_model = ZhMatchingConfig
    value_bounds = VALUE_BOUNDS

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        """Write the synthetic coloured-object scenes in the precomp layout (see demo.py)."""
        demo.make_demo_data(Path(root), seed)

    def check_data(self, data_dir: Path) -> DataReport:
        """Layout (with SCAN's im_div), images per split, sources and every problem; reads
        headers and captions, never the features (see data_report.py)."""
        return data_report.check_data(Path(data_dir))

    def build(self, config: ZhMatchingConfig, data_dir: Path, device: Any) -> TrialSetup:
        """Check the data (DataError on a problem), take SCAN's vocabulary json when the data
        has one or build the vocabulary from the training captions, then the seeded model on
        `device` and the training batches; val is prepared now so a bad file fails early."""
        data_dir = Path(data_dir)
        data_report.check_data(data_dir).raise_if_unusable()
        train = data.load_split(data_dir, "train", config.max_samples_per_split)
        vocabulary_json = find_vocabulary_json(data_dir)
        if vocabulary_json is not None:
            vocabulary = read_scan_vocabulary(vocabulary_json)
        else:
            vocabulary = build_vocabulary(train.captions, config.min_word_count)
        torch.manual_seed(config.seed)
        model = RegionWordMatcher(config, train.region_features.shape[-1], vocabulary).to(device)
        pairs = RegionCaptionPairs(
            data.features_path(data_dir, "train"),
            [vocabulary.encode(text, config.max_caption_tokens) for text in train.captions],
            train.caption_feature_rows,
        )
        setup = TrialSetup(
            model=model,
            train_batches=training_batches(
                pairs, train.num_images, data.CAPTIONS_PER_IMAGE, config.batch_size,
                config.seed, config.num_workers,
            ),
            device=device,
            unfreezable_blocks={},  # precomputed features: no pretrained encoder to unfreeze
            extras={
                "config": config,
                "vocabulary": vocabulary,
                "data_dir": data_dir,
                "splits": {},
                "model_outputs": ModelOutputCache(),  # val's scores from evaluate, for the probe
            },
        )
        self._split(setup, "val")
        return setup

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        """The configured loss on one (regions, token_ids, lengths) batch."""
        region_features, token_ids, lengths = batch
        model: RegionWordMatcher = setup.model
        regions = model.encode_regions(region_features.to(setup.device, non_blocking=True))
        words, word_mask = model.encode_captions(
            token_ids.to(setup.device, non_blocking=True), lengths
        )
        setup.extras["model_outputs"].note_training_step()
        return matching_loss(model.similarity(regions, words, word_mask), setup.extras["config"])

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """R@1/5/10 both ways, mean_r1, rsum, MRR (5 captions per image), chance levels and
        `samples` (images) on "val", "test" or "testall"; testall adds the same keys prefixed
        `fold5/`, averaged over its 5 folds of consecutive images (COCO 1K beside the
        whole-split COCO 5K)."""
        encoded = encode_split(setup.model, self._split(setup, split), setup.device)
        if split == "val":
            setup.extras["model_outputs"].put("val_encoded", encoded)
        index = encoded.caption_image_index
        metrics = {
            **retrieval_metrics(encoded.similarity, index),
            **chance_metrics(encoded.num_images),
            "samples": float(encoded.num_images),
        }
        if split == "testall":
            folds = data.TESTALL_FOLDS
            per_fold = {
                **fold_averaged_retrieval_metrics(encoded.similarity, index, folds),
                **chance_metrics(encoded.num_images // folds),
            }
            metrics.update({FOLDS_PREFIX + key: value for key, value in per_fold.items()})
        return metrics

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Pooled-feature statistics, shuffled-modality mean R@1, pair similarities on val."""
        encoded = self._val_encoded(setup)
        index = encoded.caption_image_index
        is_match = index[None, :] == torch.arange(encoded.num_images)[:, None]
        return {
            **embedding_statistics(encoded.image_features, "image"),
            **embedding_statistics(encoded.caption_features, "text"),
            **shuffled_mean_r1(encoded),
            **pair_similarities(encoded.similarity, is_match),
        }

    def figures(self, setup: TrialSetup, split: str) -> dict[str, Any]:
        """Recall@K, similarity histograms and a top-5 grid on a split (retrieval_figures);
        images are region features, so the grid names them."""
        evaluation = self._split(setup, split)
        encoded = (self._val_encoded(setup) if split == "val"
                   else encode_split(setup.model, evaluation, setup.device))
        tokens = setup.extras["vocabulary"].tokens
        return retrieval_figures(
            encoded.similarity, encoded.caption_image_index,
            lambda i: RetrievedItem(text=f"image {i}"),
            lambda j: "".join(tokens[int(t)] for t in evaluation.token_ids[j][1:evaluation.lengths[j] - 1]))

    def _split(self, setup: TrialSetup, split: str) -> EvaluationSplit:
        """The split with its captions encoded, read on first use and cached in setup.extras."""
        cache = setup.extras["splits"]
        if split not in cache:
            config: ZhMatchingConfig = setup.extras["config"]
            vocabulary: Vocabulary = setup.extras["vocabulary"]
            if split not in data.SPLIT_FILES or split == "train":
                raise ValueError(f"unknown evaluation split {split!r}; use val, test or testall")
            data_dir = setup.extras["data_dir"]
            if split in data.OPTIONAL_SPLITS and not data.split_present(data_dir, split):
                raise DataError(
                    f"{data.features_path(data_dir, split)}: no {split} split in {data_dir} "
                    "(only COCO's precomp data ships testall_ims.npy and testall_caps.txt); "
                    "evaluate val or test"
                )
            loaded = data.load_split(data_dir, split, images_to_load(config, split))
            token_ids, lengths = pad_token_ids(
                [vocabulary.encode(text, config.max_caption_tokens) for text in loaded.captions]
            )
            cache[split] = EvaluationSplit(
                loaded.region_features, loaded.image_feature_rows, token_ids, lengths,
                loaded.caption_image_index,
            )
        return cache[split]

    def _val_encoded(self, setup: TrialSetup) -> EncodedSplit:
        """The val scores of the last evaluate, unless the model has trained since."""
        return setup.extras["model_outputs"].get_or_compute(
            "val_encoded", lambda: encode_split(setup.model, self._split(setup, "val"), setup.device)
        )
