"""The `anomaly` task: scene anomaly detection from a camera image and a LiDAR point cloud.

The orchestrator drives it only through the `tasks.base.Task` interface: this module wires the
data (data.py), the model (model.py) and the shared losses, metrics and probes (tasks/common/).
The scene label comes from the per-point labels by the rule in data.py; the target metric is the
validation AUROC of the scene scores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, TensorDataset

from tasks.base import INF, DataReport, TrialSetup
from tasks.anomaly import data, demo
from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.model import CrossModalAnomalyDetector, DetectorOutput, build_detector
from tasks.common.binary_losses import focal_loss, weighted_binary_cross_entropy
from tasks.common.classification_metrics import (
    accuracy_with_majority_rate,
    auroc,
    average_precision,
    fpr_at_tpr,
)
from tasks.common.embedding_stats import EMBEDDING_PROBE_BOUNDS, embedding_statistics
from tasks.common.epoch_shuffle import EpochShuffleSampler
from tasks.common.figures import roc_pr_curves
from tasks.common.image_loading import normalise_images
from tasks.common.modality_shuffle import derangement
from tasks.common.local_weights import with_resolved_weights

EVAL_BATCH_SIZE = 128
DECISION_THRESHOLD = 0.5  # on the predicted probability, for accuracy
PROBE_SHUFFLE_SEED = 0
MODALITIES = ("image", "points")

_FRACTION_METRICS = ("auroc", "auprc", "fpr95", "accuracy", "majority_rate")
VALUE_BOUNDS: dict[str, tuple[float, float]] = {
    "train/loss": (0.0, INF),
    **{f"{split}/{name}": (0.0, 1.0) for split in ("val", "test") for name in _FRACTION_METRICS},
    "*/chance/*": (0.0, 1.0),
    "*/samples": (1.0, INF),
    **EMBEDDING_PROBE_BOUNDS,
    "probe/*_shuffled/auroc": (0.0, 1.0),
}


def positive_class_weight(config: AnomalyConfig, train_labels: torch.Tensor) -> float:
    """The BCE pos_weight: the configured number, or for "auto" negatives / positives of train."""
    if config.pos_weight != "auto":
        return float(config.pos_weight)
    positives = int(train_labels.sum())
    negatives = len(train_labels) - positives
    return negatives / positives if positives and negatives else 1.0


def scene_loss(config: AnomalyConfig, logits: torch.Tensor, labels: torch.Tensor, pos_weight: float):
    """The configured loss of (B,) logits against (B,) 0/1 scene labels; a scalar >= 0."""
    if config.loss == "focal":
        return focal_loss(logits, labels, config.focal_gamma, config.focal_alpha)
    return weighted_binary_cross_entropy(logits, labels, pos_weight)


def detection_metrics(scores: torch.Tensor, labels: torch.Tensor) -> dict[str, float]:
    """AUROC, AUPRC, FPR at 95% TPR, accuracy at p >= 0.5 beside the majority-class rate, and
    the chance levels of AUROC (0.5) and AUPRC (the positive rate). scores: (S,) probabilities."""
    predictions = (scores >= DECISION_THRESHOLD).long()
    return {
        "auroc": auroc(scores, labels),
        "auprc": average_precision(scores, labels),
        "fpr95": fpr_at_tpr(scores, labels, 0.95),
        **accuracy_with_majority_rate(predictions, labels.long()),
        "chance/auroc": 0.5,
        "chance/auprc": float(labels.float().mean()),
    }


@torch.no_grad()
def predict_split(
    model: CrossModalAnomalyDetector,
    split: data.AnomalySplit,
    device: Any,
    image_order: torch.Tensor | None = None,
    point_order: torch.Tensor | None = None,
) -> DetectorOutput:
    """Scores and modality embeddings of every scene of a split, in eval mode, float32 on CPU.

    image_order / point_order: optional permutations; scene i then gets the image (or the
    points and mask) of scene order[i], for the shuffled-modality probes. Each module's
    train/eval flag is restored afterwards (frozen blocks keep eval-mode BatchNorm).
    """
    count = len(split)
    image_order = torch.arange(count) if image_order is None else image_order
    point_order = torch.arange(count) if point_order is None else point_order
    modes = {module: module.training for module in model.modules()}
    model.eval()
    parts: list[DetectorOutput] = []
    try:
        for start in range(0, count, EVAL_BATCH_SIZE):
            images = split.images[image_order[start : start + EVAL_BATCH_SIZE]]
            rows = point_order[start : start + EVAL_BATCH_SIZE]
            output = model(
                normalise_images(images.to(device)),
                split.points[rows].to(device),
                split.point_mask[rows].to(device),
            )
            parts.append(
                DetectorOutput(*(tensor.float().cpu() for tensor in (
                    output.logits, output.image_embedding, output.point_embedding)))
            )
    finally:
        for module, training in modes.items():
            module.training = training
    return DetectorOutput(
        logits=torch.cat([part.logits for part in parts]),
        image_embedding=torch.cat([part.image_embedding for part in parts]),
        point_embedding=torch.cat([part.point_embedding for part in parts]),
    )


def training_batches(train: data.AnomalySplit, batch_size: int, seed: int, num_workers: int) -> DataLoader:
    """A re-iterable DataLoader of (images, points, mask, labels) batches, each epoch's order
    drawn from (seed, epoch) (tasks/common/epoch_shuffle.py).

    The last partial batch is dropped when there are at least 2 full batches or when it would
    hold a single scene (BatchNorm cannot normalise a batch of one).
    """
    dataset = TensorDataset(train.images, train.points, train.point_mask, train.scene_labels)
    count = len(train)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=EpochShuffleSampler(count, seed),
        drop_last=count >= 2 * batch_size or count % batch_size == 1,
        num_workers=num_workers,
    )


class AnomalyTask:
    """Scene anomaly detection (image + point cloud); target metric val/auroc (higher is better)."""

    name = "anomaly"
    metric = "val/auroc"
    mode = "max"
    config_model = AnomalyConfig
    value_bounds = VALUE_BOUNDS

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        """Write the procedural road-scene dataset in AnoVox's released layout (see demo.py)."""
        demo.make_demo_data(Path(root), seed)

    def check_data(self, data_dir: Path) -> DataReport:
        """The layout detected, frames (or scenes) per split, the reader's choices and every
        problem, from directory listings and file headers (see data.check_data)."""
        return data.check_data(Path(data_dir))

    def build(self, config: AnomalyConfig, data_dir: Path, device: Any) -> TrialSetup:
        """Load train and val, build the seeded detector on `device` with the training points'
        input statistics, and the seeded training batches. A relative `image_weights` path is
        read from `data_dir`."""
        config = with_resolved_weights(config, Path(data_dir), ("image_weights",))
        data_dir = Path(data_dir)
        # No separate check_data pass: loading raises the same one-line DataErrors.
        train = self._load(config, data_dir, "train")
        torch.manual_seed(config.seed)
        model = build_detector(config)
        model.point_encoder.set_input_statistics(train.points, train.point_mask)
        model.to(device)
        return TrialSetup(
            model=model,
            train_batches=training_batches(train, config.batch_size, config.seed, config.num_workers),
            device=device,
            unfreezable_blocks=model.unfreezable_blocks(image_pretrained=config.image_weights is not None),
            extras={
                "config": config,
                "data_dir": data_dir,
                "pos_weight": positive_class_weight(config, train.scene_labels),
                # val is loaded now so a bad val file fails before any training
                "splits": {"train": train, "val": self._load(config, data_dir, "val")},
            },
        )

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        """The configured loss (weighted BCE or focal) of one batch of scenes."""
        config: AnomalyConfig = setup.extras["config"]
        images, points, mask, labels = (tensor.to(setup.device, non_blocking=True) for tensor in batch)
        output = setup.model(normalise_images(images), points, mask)
        return {"loss": scene_loss(config, output.logits, labels, setup.extras["pos_weight"])}

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """AUROC, AUPRC, FPR95, accuracy with majority_rate, chance levels and `samples` (scenes)
        on a split."""
        scenes = self._split(setup, split)
        output = predict_split(setup.model, scenes, setup.device)
        return {
            **detection_metrics(torch.sigmoid(output.logits), scenes.scene_labels),
            "samples": float(len(scenes.scene_labels)),
        }

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Per-modality embedding statistics and the val AUROC with each modality shuffled
        across the validation scenes (labels stay with their scene)."""
        val = self._split(setup, "val")
        model, device = setup.model, setup.device
        output = predict_split(model, val, device)
        moved = derangement(len(val), PROBE_SHUFFLE_SEED)
        images_moved = predict_split(model, val, device, image_order=moved)
        points_moved = predict_split(model, val, device, point_order=moved)
        return {
            **embedding_statistics(output.image_embedding, "image"),
            **embedding_statistics(output.point_embedding, "points"),
            "image_shuffled/auroc": auroc(images_moved.logits, val.scene_labels),
            "points_shuffled/auroc": auroc(points_moved.logits, val.scene_labels),
        }

    def figures(self, setup: TrialSetup, split: str) -> dict[str, Any]:
        """ROC and PR curves of the scene scores on a split."""
        scenes = self._split(setup, split)
        scores = torch.sigmoid(predict_split(setup.model, scenes, setup.device).logits)
        return {"roc_pr": roc_pr_curves(scores, scenes.scene_labels, title=f"{split} scenes")}

    def _load(self, config: AnomalyConfig, data_dir: Path, split: str) -> data.AnomalySplit:
        return data.load_split(
            data_dir, split, config.image_size, config.num_points, config.min_anomalous_points,
            config.max_samples_per_split,
        )

    def _split(self, setup: TrialSetup, split: str) -> data.AnomalySplit:
        """The loaded split, read from disk on first use and cached in setup.extras."""
        cache = setup.extras["splits"]
        if split not in cache:
            cache[split] = self._load(setup.extras["config"], setup.extras["data_dir"], split)
        return cache[split]
