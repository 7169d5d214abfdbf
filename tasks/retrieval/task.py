"""The `retrieval` task: a dual encoder trained with InfoNCE for image-text retrieval (Flickr8k).

The orchestrator drives it only through the `tasks.base.Task` interface: this module wires the
data (data.py, sampling.py), the model (model.py), the shared loss, metrics and probes
(tasks/common/) together.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from tasks.base import INF, DataReport, TrialSetup
from tasks.common.contrastive import contrastive_loss
from tasks.common.embedding_stats import (
    EMBEDDING_PROBE_BOUNDS,
    PAIR_SIMILARITY_BOUNDS,
    embedding_statistics,
    pair_similarities,
)
from tasks.common.figures import RetrievedItem
from tasks.common.image_loading import normalise_images
from tasks.common.modality_shuffle import derangement
from tasks.common.model_output_cache import ModelOutputCache
from tasks.common.retrieval_metrics import (
    RETRIEVAL_METRIC_BOUNDS,
    chance_metrics,
    retrieval_metrics,
)
from tasks.common.retrieval_figures import retrieval_figures
from tasks.common.text_tokenizer import tokenize_captions
from tasks.common.local_weights import with_resolved_weights
from tasks.retrieval import data, demo
from tasks.retrieval.config import RetrievalConfig
from tasks.retrieval.model import DualEncoder, build_dual_encoder
from tasks.retrieval.sampling import ImageCaptionPairs, training_batches

EVAL_BATCH_SIZE = 256
PROBE_SHUFFLE_SEED = 0

VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "train/loss": (0.0, INF),
    "train/infonce": (0.0, INF),
    "train/hard_negative_hinge": (0.0, INF),
    **RETRIEVAL_METRIC_BOUNDS,
    "*/chance/*": (0.0, 1.0),
    "*/samples": (1.0, INF),
    **EMBEDDING_PROBE_BOUNDS,
    "probe/*_shuffled/mean_r1": (0.0, 1.0),
    **PAIR_SIMILARITY_BOUNDS,
}


@dataclass
class TokenisedSplit:
    """A loaded split with its captions tokenised once: what training and evaluation read."""

    images: torch.Tensor  # (N, 3, S, S) uint8
    input_ids: torch.Tensor  # (5N, L) long
    attention_mask: torch.Tensor  # (5N, L) long
    caption_image_index: torch.Tensor  # (5N,) long

    @property
    def num_images(self) -> int:
        return self.images.shape[0]


def tokenise_split(split: data.RetrievalSplit, tokenizer: Any, max_tokens: int) -> TokenisedSplit:
    input_ids, attention_mask = tokenize_captions(tokenizer, split.captions, max_tokens)
    return TokenisedSplit(split.images, input_ids, attention_mask, split.caption_image_index)


def drop_padding_columns(
    input_ids: torch.Tensor, attention_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Remove token columns that are padding in every row (short captions run much faster)."""
    keep = attention_mask.bool().any(dim=0)
    return input_ids[:, keep], attention_mask[:, keep]


@torch.no_grad()
def encode_split(
    model: DualEncoder, split: TokenisedSplit, device: Any
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embed every image and caption of a split in eval mode, in batches.

    Returns (image embeddings (N, d), caption embeddings (5N, d)), float32 on CPU, unit norm.
    Each module's train/eval flag is restored afterwards (frozen blocks keep eval-mode BatchNorm).
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        image_parts = [
            model.encode_images(
                normalise_images(split.images[start : start + EVAL_BATCH_SIZE].to(device))
            )
            .float()
            .cpu()
            for start in range(0, split.num_images, EVAL_BATCH_SIZE)
        ]
        text_parts = []
        for start in range(0, len(split.input_ids), EVAL_BATCH_SIZE):
            input_ids, attention_mask = drop_padding_columns(
                split.input_ids[start : start + EVAL_BATCH_SIZE],
                split.attention_mask[start : start + EVAL_BATCH_SIZE],
            )
            text_parts.append(
                model.encode_texts(input_ids.to(device), attention_mask.to(device)).float().cpu()
            )
    finally:
        for module, training in modes.items():
            module.training = training
    return torch.cat(image_parts), torch.cat(text_parts)


class RetrievalTask:
    """Image-text retrieval with a dual encoder; target metric val/mean_r1 (higher is better)."""

    name = "retrieval"
    metric = "val/mean_r1"
    mode = "max"
    config_model = RetrievalConfig
    value_bounds = VALUE_BOUNDS

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        """Write the procedural shapes dataset in Kaggle's Flickr8k layout (see demo.py)."""
        demo.make_demo_data(Path(root), seed)

    def check_data(self, data_dir: Path) -> DataReport:
        """The layout found, images per split, caption and split sources, every problem."""
        return data.check_data(Path(data_dir))

    def build(self, config: RetrievalConfig, data_dir: Path, device: Any) -> TrialSetup:
        """Load train and val, train/load the tokeniser, build the seeded model on `device`.

        Relative `image_weights` / `text_encoder` paths are read from `data_dir`."""
        config = with_resolved_weights(config, Path(data_dir), ("image_weights", "text_encoder"))
        index = data.read_index(Path(data_dir))
        train_split = data.load_split(
            index, "train", config.image_size, config.max_samples_per_split
        )
        torch.manual_seed(config.seed)
        model, tokenizer = build_dual_encoder(config, train_split.captions)
        model.to(device)
        train = tokenise_split(train_split, tokenizer, config.max_caption_tokens)
        pairs = ImageCaptionPairs(
            train.images, train.input_ids, train.attention_mask, train.caption_image_index
        )
        batches = training_batches(
            pairs,
            train.num_images,
            data.CAPTIONS_PER_IMAGE,
            config.batch_size,
            config.seed,
            config.num_workers,
        )
        setup = TrialSetup(
            model=model,
            train_batches=batches,
            device=device,
            unfreezable_blocks=model.unfreezable_blocks(
                image_pretrained=config.image_weights is not None,
                text_pretrained=config.text_encoder is not None,
            ),
            extras={
                "config": config,
                "tokenizer": tokenizer,
                "index": index,
                "splits": {},
                "model_outputs": ModelOutputCache(),  # val's embeddings from evaluate, for the probe
            },
        )
        self._split(setup, "val")  # load now so a bad val image fails before any training
        return setup

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        """InfoNCE (+ optional hard-negative hinge) of one (images, input_ids, attention_mask) batch."""
        config: RetrievalConfig = setup.extras["config"]
        images, input_ids, attention_mask = batch
        input_ids, attention_mask = drop_padding_columns(input_ids, attention_mask)
        model: DualEncoder = setup.model
        image_embeddings = model.encode_images(
            normalise_images(images.to(setup.device, non_blocking=True))
        )
        text_embeddings = model.encode_texts(
            input_ids.to(setup.device, non_blocking=True),
            attention_mask.to(setup.device, non_blocking=True),
        )
        setup.extras["model_outputs"].note_training_step()
        return contrastive_loss(
            image_embeddings,
            text_embeddings,
            temperature=config.temperature,
            label_smoothing=config.label_smoothing,
            hard_negative_ratio=config.hard_negative_ratio,
            hard_negative_weight=config.hard_negative_weight,
            hard_negative_margin=config.hard_negative_margin,
        )

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """R@1/5/10 both ways, mean_r1, rsum, MRR, chance levels and `samples` (images) on "val" or
        "test"."""
        tokenised = self._split(setup, split)
        image_embeddings, text_embeddings = encode_split(setup.model, tokenised, setup.device)
        if split == "val":
            setup.extras["model_outputs"].put("val_embeddings", (image_embeddings, text_embeddings))
        metrics = retrieval_metrics(
            image_embeddings @ text_embeddings.T, tokenised.caption_image_index
        )
        return {
            **metrics,
            **chance_metrics(tokenised.num_images),
            "samples": float(tokenised.num_images),
        }

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Embedding statistics, shuffled-modality mean R@1 and pair similarities on val."""
        val = self._split(setup, "val")
        image_embeddings, text_embeddings = self._val_embeddings(setup, val)
        caption_index = val.caption_image_index
        dim = text_embeddings.shape[-1]
        # Whole caption groups move to another image, so no caption stays with its own image.
        image_permutation = derangement(val.num_images, PROBE_SHUFFLE_SEED)
        texts_moved = text_embeddings.view(val.num_images, data.CAPTIONS_PER_IMAGE, dim)[
            image_permutation
        ].view(-1, dim)
        images_moved = image_embeddings[image_permutation]
        similarity = image_embeddings @ text_embeddings.T
        is_match = caption_index[None, :] == torch.arange(val.num_images)[:, None]
        return {
            **embedding_statistics(image_embeddings, "image"),
            **embedding_statistics(text_embeddings, "text"),
            "image_shuffled/mean_r1": retrieval_metrics(
                images_moved @ text_embeddings.T, caption_index
            )["mean_r1"],
            "text_shuffled/mean_r1": retrieval_metrics(
                image_embeddings @ texts_moved.T, caption_index
            )["mean_r1"],
            **pair_similarities(similarity, is_match),
        }

    def figures(self, setup: TrialSetup, split: str) -> dict[str, Any]:
        """Recall@K, similarity histograms and a top-5 grid on a split (retrieval_figures)."""
        tokenised = self._split(setup, split)
        images, texts = (self._val_embeddings(setup, tokenised) if split == "val"
                         else encode_split(setup.model, tokenised, setup.device))
        tokenizer = setup.extras["tokenizer"]
        return retrieval_figures(
            images @ texts.T, tokenised.caption_image_index,
            lambda i: RetrievedItem(image=tokenised.images[i].permute(1, 2, 0).numpy(), text=f"image {i}"),
            lambda j: tokenizer.decode(tokenised.input_ids[j], skip_special_tokens=True))

    def _split(self, setup: TrialSetup, split: str) -> TokenisedSplit:
        """The tokenised split, loaded from disk on first use and cached in setup.extras."""
        if split not in data.SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(data.SPLITS)}")
        cache = setup.extras["splits"]
        if split not in cache:
            config: RetrievalConfig = setup.extras["config"]
            loaded = data.load_split(
                setup.extras["index"], split, config.image_size, config.max_samples_per_split
            )
            cache[split] = tokenise_split(
                loaded, setup.extras["tokenizer"], config.max_caption_tokens
            )
        return cache[split]

    def _val_embeddings(
        self, setup: TrialSetup, val: TokenisedSplit
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Val embeddings from the last evaluate, unless the model has trained since."""
        return setup.extras["model_outputs"].get_or_compute(
            "val_embeddings", lambda: encode_split(setup.model, val, setup.device)
        )
