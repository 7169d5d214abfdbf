"""The `multiview` task: a shared encoder trained so that two views of one object match.

The orchestrator drives it only through the `tasks.base.Task` interface: this module wires the
data (data.py: any layout the task reads, split by object, paired; sampling.py: batches), the
model (model.py), the loss (loss.py) and the shared verification, retrieval and embedding
metrics (tasks/common/) together.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from tasks.base import INF, DataReport, TrialSetup
from tasks.common.embedding_stats import (
    EMBEDDING_PROBE_BOUNDS,
    PAIR_SIMILARITY_BOUNDS,
    embedding_statistics,
    pair_similarities,
)
from tasks.common.figures import roc_pr_curves, similarity_histograms
from tasks.common.image_loading import normalise_images
from tasks.common.modality_shuffle import derangement
from tasks.common.model_output_cache import ModelOutputCache
from tasks.common.pair_verification import best_accuracy_threshold, verification_metrics
from tasks.common.retrieval_metrics import retrieval_metrics
from tasks.common.local_weights import with_resolved_weights
from tasks.multiview import data, demo
from tasks.multiview.config import MultiviewConfig
from tasks.multiview.loading import ViewPairSplit, load_split
from tasks.multiview.loss import multiview_loss
from tasks.multiview.model import ViewEncoder, build_view_encoder
from tasks.multiview.pairs import first_pairs
from tasks.multiview.sampling import PositivePairs, training_batches

EVAL_BATCH_SIZE = 256
PROBE_SHUFFLE_SEED = 0
CHANCE_AUROC = 0.5

_FRACTION_METRICS = ("auroc", "accuracy", "majority_rate", "r1")
_COSINE_METRICS = ("threshold", "positive_similarity", "negative_similarity")
VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "train/loss": (0.0, INF),
    "train/infonce": (0.0, INF),
    "train/consistency": (0.0, 4.0),
    "train/hard_negative_hinge": (0.0, INF),
    **{f"{split}/{name}": (0.0, 1.0) for split in ("val", "test") for name in _FRACTION_METRICS},
    **{f"{split}/{name}": (-1.0, 1.0) for split in ("val", "test") for name in _COSINE_METRICS},
    "*/chance/*": (0.0, 1.0),
    "*/samples": (1.0, INF),
    **EMBEDDING_PROBE_BOUNDS,
    "probe/*_shuffled/r1": (0.0, 1.0),
    **PAIR_SIMILARITY_BOUNDS,
}


@torch.no_grad()
def encode_images(model: ViewEncoder, images: torch.Tensor, device: Any) -> torch.Tensor:
    """Embed (N, 3, S, S) uint8 images in eval mode, in batches -> (N, d) float32 CPU unit rows.

    Each module's train/eval flag is restored afterwards (frozen blocks keep eval-mode BatchNorm).
    """
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        parts = [
            model.encode_views(normalise_images(images[start : start + EVAL_BATCH_SIZE].to(device)))
            .float()
            .cpu()
            for start in range(0, len(images), EVAL_BATCH_SIZE)
        ]
    finally:
        for module, training in modes.items():
            module.training = training
    return torch.cat(parts)


def pair_cosines(embeddings: torch.Tensor, split: ViewPairSplit) -> torch.Tensor:
    """(P,) cosine of each pair's two views, from the split's (N, d) unit image embeddings."""
    return (embeddings[split.view_a] * embeddings[split.view_b]).sum(dim=-1)


def positive_pair_r1(view_a: torch.Tensor, view_b: torch.Tensor) -> float:
    """R@1 among the positive pairs, view_a -> view_b and back, averaged.

    view_a, view_b: (P, d) unit embeddings, row i of each from positive pair i; each view_a
    must find its own view_b among all P (and back). Ties count against the model.
    """
    similarity = view_a @ view_b.T
    return retrieval_metrics(similarity, torch.arange(len(view_a)))["mean_r1"]


class MultiviewTask:
    """Two views of one object matched by a shared encoder; target metric val/auroc (max)."""

    name = "multiview"
    metric = "val/auroc"
    mode = "max"
    config_model = MultiviewConfig
    value_bounds = VALUE_BOUNDS

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        """Write the procedural drawn-objects dataset as an MVCNN render tree (see demo.py)."""
        demo.make_demo_data(Path(root), seed)

    def check_data(self, data_dir: Path) -> DataReport:
        """The layout found, objects (or manifest pairs) per split, every problem, split leaks."""
        return data.check_data(Path(data_dir))

    def build(self, config: MultiviewConfig, data_dir: Path, device: Any) -> TrialSetup:
        """Split and pair the data as `config` says, load train and val, build the seeded
        shared encoder on `device`. DataError on a problem in the data; an image or object in
        two splits is refused before any trial (orchestrate sweep, unless --allow-data-leak).
        A relative `backbone_weights` path is read from `data_dir`."""
        config = with_resolved_weights(config, Path(data_dir), ("backbone_weights",))
        plan = data.plan_dataset(Path(data_dir), config, read_headers=False)
        plan.report.raise_if_unusable(allow_leaks=True)
        positives = first_pairs(
            [pair for pair in plan.pairs["train"] if pair.label == 1], config.max_samples_per_split
        )
        train = load_split(plan.root, positives, config.image_size)
        pairs = PositivePairs(train.images, train.view_a, train.view_b)
        torch.manual_seed(config.seed)
        model = build_view_encoder(config).to(device)
        setup = TrialSetup(
            model=model,
            train_batches=training_batches(
                pairs,
                train.pair_objects,
                train.pair_classes,
                config.batch_size,
                config.same_class_negative_share,
                config.seed,
                config.num_workers,
            ),
            device=device,
            unfreezable_blocks=model.unfreezable_blocks(
                pretrained=config.backbone_weights is not None
            ),
            extras={
                "config": config,
                "root": plan.root,
                "pairs": plan.pairs,
                "splits": {},
                "embeddings": ModelOutputCache(),  # per split, shared by evaluate, probe, figures
                "val_threshold": None,
            },
        )
        self._split(setup, "val")  # load now so a bad val image fails before any training
        return setup

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        """The multiview loss of one batch of positive pairs (view_a images, view_b images)."""
        config: MultiviewConfig = setup.extras["config"]
        images_a, images_b = batch
        model: ViewEncoder = setup.model
        # One forward pass over both views: BatchNorm sees one batch, as at evaluation.
        both = torch.cat([images_a, images_b]).to(setup.device, non_blocking=True)
        embeddings = model.encode_views(normalise_images(both))
        view_a, view_b = embeddings.split(len(images_a))
        setup.extras["embeddings"].note_training_step()
        return multiview_loss(
            view_a,
            view_b,
            temperature=config.temperature,
            consistency_weight=config.consistency_weight,
            hard_negative_ratio=config.hard_negative_ratio,
            hard_negative_weight=config.hard_negative_weight,
            hard_negative_margin=config.hard_negative_margin,
        )

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """Pair verification (AUROC; accuracy at the val-chosen threshold), R@1, chance levels
        and `samples` (pairs).

        Evaluating "val" chooses the accuracy-maximising threshold and stores it in
        setup.extras["val_threshold"]; any other split is thresholded with the last val
        threshold (val is evaluated first if it never was).
        """
        view_split = self._split(setup, split)
        embeddings = self._embeddings(setup, split, refresh=True)
        scores = pair_cosines(embeddings, view_split)
        if split == "val":
            threshold = best_accuracy_threshold(scores, view_split.pair_labels)
            setup.extras["val_threshold"] = threshold
        else:
            if setup.extras["val_threshold"] is None:
                self.evaluate(setup, "val")
            threshold = setup.extras["val_threshold"]
        targets = view_split.first_positive_per_object()
        return {
            **verification_metrics(scores, view_split.pair_labels, threshold),
            "r1": positive_pair_r1(
                embeddings[view_split.view_a[targets]], embeddings[view_split.view_b[targets]]
            ),
            "chance/auroc": CHANCE_AUROC,
            "chance/r1": 1.0 / len(targets),
            "samples": float(len(view_split.pair_labels)),
        }

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Per-view embedding statistics, R@1 with view_a shuffled, pair similarities, on val."""
        val = self._split(setup, "val")
        embeddings = self._embeddings(setup, "val")
        targets = val.first_positive_per_object()
        view_a = embeddings[val.view_a[targets]]
        view_b = embeddings[val.view_b[targets]]
        # Every view_a moves to another pair, so no pair keeps its own object's two views.
        moved = view_a[derangement(len(view_a), PROBE_SHUFFLE_SEED)]
        scores = pair_cosines(embeddings, val)
        return {
            **embedding_statistics(embeddings[val.view_a.unique()], "view_a"),
            **embedding_statistics(embeddings[val.view_b.unique()], "view_b"),
            "view_a_shuffled/r1": positive_pair_r1(moved, view_b),
            **pair_similarities(scores, val.positives),
        }

    def figures(self, setup: TrialSetup, split: str) -> dict[str, Any]:
        """ROC and PR curves of the pair cosines, and their histograms, same vs different object."""
        view_split = self._split(setup, split)
        scores = pair_cosines(self._embeddings(setup, split), view_split)
        same = view_split.pair_labels.bool()
        return {"roc_pr": roc_pr_curves(scores, same, title=f"{split} view pairs"),
                "similarities": similarity_histograms(scores[same], scores[~same], title="view-pair cosine")}

    def _split(self, setup: TrialSetup, split: str) -> ViewPairSplit:
        """The split's pairs and images, loaded from disk on first use and cached."""
        if split not in data.SPLITS:
            raise ValueError(f"unknown split {split!r}; use one of {', '.join(data.SPLITS)}")
        cache = setup.extras["splits"]
        if split not in cache:
            config: MultiviewConfig = setup.extras["config"]
            pairs = first_pairs(setup.extras["pairs"][split], config.max_samples_per_split)
            cache[split] = load_split(setup.extras["root"], pairs, config.image_size)
        return cache[split]

    def _embeddings(self, setup: TrialSetup, split: str, refresh: bool = False) -> torch.Tensor:
        """The split's image embeddings; cached ones are reused unless the model has trained
        since or `refresh` is set (evaluate refreshes: weights may have been loaded since)."""
        cache: ModelOutputCache = setup.extras["embeddings"]

        def encode() -> torch.Tensor:
            return encode_images(setup.model, self._split(setup, split).images, setup.device)

        return cache.put(split, encode()) if refresh else cache.get_or_compute(split, encode)
