"""The `anomaly` task: scene anomaly detection from a camera image and a LiDAR point cloud.

The orchestrator drives it only through the `tasks.base.Task` interface: this module wires the
data (data.py), the model (model.py) and the shared losses, metrics and probes (tasks/common/).
The scene label comes from the per-point labels by the rule in data.py; the target metric is the
validation AUROC of the scene scores.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.base import INF, DataReport, TrialSetup
from tasks.anomaly import data, demo
from tasks.anomaly.config import AnomalyConfig
from tasks.anomaly.model import CrossModalAnomalyDetector, DetectorOutput, SceneFeatures, build_detector
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
from tasks.common.modality_shuffle import closed_groups, paired_derangement
from tasks.common.model_output_cache import ModelOutputCache
from tasks.common.local_weights import with_resolved_weights

EVAL_BATCH_SIZE = 128
# Val's scene features are kept from evaluate for the probe up to this size (the demo's 105
# scenes of 512 points: 14 MB); a larger val set is encoded again, a group at a time. The
# probe fuses kept features in one pass, with a few times their size in temporaries.
FEATURE_CACHE_BYTES = 64 * 2**20
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


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run the block in eval mode without gradients, then restore every module's own train/eval
    flag (frozen blocks keep eval-mode BatchNorm during training)."""
    modes = {module: module.training for module in model.modules()}
    model.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for module, training in modes.items():
            module.training = training


def encode_scenes(model: CrossModalAnomalyDetector, split: data.AnomalySplit, rows: torch.Tensor,
                  device: Any) -> SceneFeatures:
    """The SceneFeatures of the split's scenes `rows` (call in eval mode, no gradients)."""
    return model.encode(
        normalise_images(split.images[rows].to(device)),
        split.points[rows].to(device),
        split.point_mask[rows].to(device),
    )


@dataclass
class SplitPrediction:
    """A split's scene outputs (float32, CPU) and, when kept, its scenes' features (on the
    model's device) for the shuffled-modality probes."""

    output: DetectorOutput
    features: SceneFeatures | None


def feature_bytes(model: CrossModalAnomalyDetector, split: data.AnomalySplit) -> int:
    """What keeping the split's SceneFeatures costs in memory (float32), dominated by the point
    tokens: scenes x points x embed_dim."""
    scenes, points = split.points.shape[:2]
    dim = model.point_tokens.out_features
    return 4 * scenes * (points * (dim + 1) + 2 * dim)


def predict_split(
    model: CrossModalAnomalyDetector, split: data.AnomalySplit, device: Any, keep_features: bool = False
) -> SplitPrediction:
    """Scores and modality embeddings of every scene of a split, in eval mode, in batches; with
    keep_features, also the scenes' SceneFeatures. Each module's train/eval flag is restored."""
    outputs: list[DetectorOutput] = []
    kept: list[SceneFeatures] = []
    with eval_mode(model):
        for start in range(0, len(split), EVAL_BATCH_SIZE):
            rows = torch.arange(start, min(start + EVAL_BATCH_SIZE, len(split)))
            features = encode_scenes(model, split, rows, device)
            outputs.append(DetectorOutput(*(tensor.float().cpu() for tensor in (
                model.classify(features), features.image_embedding, features.point_embedding))))
            if keep_features:
                kept.append(features)
    return SplitPrediction(
        DetectorOutput(*(torch.cat(column) for column in zip(*(
            (part.logits, part.image_embedding, part.point_embedding) for part in outputs)))),
        SceneFeatures.cat(kept) if keep_features else None,
    )


def shuffled_modality_logits(
    model: CrossModalAnomalyDetector, features: SceneFeatures, permutation: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """(image moved, points moved): (B,) logits of each scene with its image, then its point
    cloud, taken from scene permutation[i] (call in eval mode, no gradients).

    Both encoders see one scene at a time in eval mode, so moving a modality's features is the
    same as moving its inputs, and only the fusion runs again. Where permutation[permutation[i]]
    is i (a paired derangement: every scene but at most three), scene i with its points moved
    meets the same (points, image) pair as scene permutation[i] with its image moved: that
    fusion is computed once for both.
    """
    tokens, mask, patches = features.point_tokens, features.point_mask, features.patches
    permutation = permutation.to(tokens.device)
    fused_image_moved = model.fuse_tokens(tokens, mask, patches[permutation])
    fused_points_moved = fused_image_moved[permutation]
    unpaired = permutation[permutation] != torch.arange(len(permutation), device=tokens.device)
    if unpaired.any():
        takes = permutation[unpaired]
        fused_points_moved[unpaired] = model.fuse_tokens(tokens[takes], mask[takes], patches[unpaired])
    image_moved = SceneFeatures(patches[permutation], features.image_embedding[permutation],
                                tokens, mask, features.point_embedding)
    points_moved = SceneFeatures(patches, features.image_embedding, tokens[permutation],
                                 mask[permutation], features.point_embedding[permutation])
    return (model.classify(image_moved, fused_image_moved).float().cpu(),
            model.classify(points_moved, fused_points_moved).float().cpu())


def shuffled_modality_aurocs(
    model: CrossModalAnomalyDetector, split: data.AnomalySplit, device: Any,
    features: SceneFeatures | None = None,
) -> dict[str, float]:
    """`image_shuffled/auroc` and `points_shuffled/auroc`: the split's AUROC with each scene's
    image, then its point cloud, taken from another scene (a fixed paired derangement; labels
    stay with their scene). `features`: the whole split's SceneFeatures when already computed
    (kept under FEATURE_CACHE_BYTES), else each group of scenes is encoded in turn, so memory
    stays bounded for a large split."""
    permutation = paired_derangement(len(split), PROBE_SHUFFLE_SEED)
    with eval_mode(model):
        if features is not None:
            image_moved, points_moved = shuffled_modality_logits(model, features, permutation)
        else:
            image_moved, points_moved = torch.empty(len(split)), torch.empty(len(split))
            position = torch.empty(len(permutation), dtype=torch.long)
            for group in closed_groups(permutation, EVAL_BATCH_SIZE):
                position[group] = torch.arange(len(group))  # each scene's row in the group
                image_moved[group], points_moved[group] = shuffled_modality_logits(
                    model, encode_scenes(model, split, group, device), position[permutation[group]])
    return {"image_shuffled/auroc": auroc(image_moved, split.scene_labels),
            "points_shuffled/auroc": auroc(points_moved, split.scene_labels)}


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
                # val's prediction from evaluate, for the probe
                "model_outputs": ModelOutputCache(),
                # val is loaded now so a bad val file fails before any training
                "splits": {"train": train, "val": self._load(config, data_dir, "val")},
            },
        )

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        """The configured loss (weighted BCE or focal) of one batch of scenes."""
        config: AnomalyConfig = setup.extras["config"]
        images, points, mask, labels = (tensor.to(setup.device, non_blocking=True) for tensor in batch)
        output = setup.model(normalise_images(images), points, mask)
        setup.extras["model_outputs"].note_training_step()
        return {"loss": scene_loss(config, output.logits, labels, setup.extras["pos_weight"])}

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """AUROC, AUPRC, FPR95, accuracy with majority_rate, chance levels and `samples` (scenes)
        on a split."""
        scenes = self._split(setup, split)
        prediction = self._predict(setup, split, scenes)
        return {
            **detection_metrics(torch.sigmoid(prediction.output.logits), scenes.scene_labels),
            "samples": float(len(scenes.scene_labels)),
        }

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Per-modality embedding statistics and the val AUROC with each modality shuffled
        across the validation scenes (labels stay with their scene)."""
        val = self._split(setup, "val")
        prediction = self._val_prediction(setup, val)
        return {
            **embedding_statistics(prediction.output.image_embedding, "image"),
            **embedding_statistics(prediction.output.point_embedding, "points"),
            **shuffled_modality_aurocs(setup.model, val, setup.device, prediction.features),
        }

    def figures(self, setup: TrialSetup, split: str) -> dict[str, Any]:
        """ROC and PR curves of the scene scores on a split."""
        scenes = self._split(setup, split)
        output = (self._val_prediction(setup, scenes) if split == "val"
                  else predict_split(setup.model, scenes, setup.device)).output
        scores = torch.sigmoid(output.logits)
        return {"roc_pr": roc_pr_curves(scores, scenes.scene_labels, title=f"{split} scenes")}

    def _predict(self, setup: TrialSetup, split: str, scenes: data.AnomalySplit) -> SplitPrediction:
        """Predict a split; val's prediction is kept for the probe, with the scenes' features
        when they fit in FEATURE_CACHE_BYTES (the probe then only re-runs the fusion)."""
        if split != "val":
            return predict_split(setup.model, scenes, setup.device)
        keep = feature_bytes(setup.model, scenes) <= FEATURE_CACHE_BYTES
        prediction = predict_split(setup.model, scenes, setup.device, keep_features=keep)
        return setup.extras["model_outputs"].put("val_prediction", prediction)

    def _val_prediction(self, setup: TrialSetup, val: data.AnomalySplit) -> SplitPrediction:
        """Val's prediction from the last evaluate, unless the model has trained since."""
        return setup.extras["model_outputs"].get_or_compute(
            "val_prediction", lambda: self._predict(setup, "val", val)
        )

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
