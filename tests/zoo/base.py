"""What the failure-zoo tasks share: one tiny two-modality dataset on disk, its loaders, and
the task skeletons (classifier, matcher, detector, regressor) whose broken piece each zoo
module overrides.

Dataset layout under data_dir (written by `write_dataset`, deterministic in the seed):
    images.npy      (N, 1, 8, 8) float32   "images"
    attributes.npy  (N, 16) float32        an attribute vector per image
    labels.csv      header `split,category,rare_event,intensity`, one row per sample
Each sample has a latent `pair` code (seen by both modalities, so pairs can be matched), an
`image` code (seen only in the image) and an `attribute` code (seen only in the attributes).
category (4 classes) = 2 x [image code > 0] + [attribute code > 0]: both modalities are
needed to classify. rare_event (about 10% positives) is an extreme image code. intensity is a
non-negative function of the image code. Every label is learnable from the inputs.
"""

from __future__ import annotations

import contextlib
import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.base import INF, DataError, TrainingConfig, TrialSetup
from tasks.common.contrastive import symmetric_infonce
from tasks.common.embedding_stats import embedding_statistics, pair_similarities
from tasks.common.retrieval_metrics import chance_metrics, retrieval_metrics

IMAGES_FILE, ATTRIBUTES_FILE, LABELS_FILE = "images.npy", "attributes.npy", "labels.csv"
LABEL_COLUMNS = ["split", "category", "rare_event", "intensity"]
SPLIT_SIZES = {"train": 512, "val": 128}
IMAGE_SHAPE = (1, 8, 8)
ATTRIBUTE_DIM = 16
PAIR_DIM, IMAGE_CODE_DIM, ATTRIBUTE_CODE_DIM = 8, 4, 4
NOISE = 0.1
RARE_EVENT_QUANTILE = 1.2816  # P(z > 1.2816) = 0.1 for a standard normal code
EVAL_SEED = 0  # evaluation and probes draw any randomness from this seed: they repeat exactly
SHUFFLE_SEED = 0


class ZooConfig(TrainingConfig):
    """The generic loop's fields plus the zoo models' sizes."""

    learning_rate: float = Field(1e-2, gt=0, description="peak AdamW learning rate")
    warmup_epochs: float = Field(0.0, ge=0, description="linear warm-up length, in epochs")
    hidden_dim: int = Field(32, ge=1, description="width of every hidden layer")
    embed_dim: int = Field(16, ge=1, description="embedding / feature dimension")
    temperature: float = Field(0.1, gt=0, description="softmax temperature of contrastive losses")


@dataclass
class ZooSplit:
    images: torch.Tensor  # (N, 1, 8, 8) float32
    attributes: torch.Tensor  # (N, 16) float32
    category: torch.Tensor  # (N,) long, 0..3
    rare_event: torch.Tensor  # (N,) long, 0/1
    intensity: torch.Tensor  # (N,) float32, >= 0

    def __len__(self) -> int:
        return self.images.shape[0]


# --- data on disk ---------------------------------------------------------------------------


def write_dataset(root: Path, seed: int = 0) -> None:
    """Write the dataset described in the module docstring under `root`."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    count = sum(SPLIT_SIZES.values())
    pair = rng.standard_normal((count, PAIR_DIM))
    image_code = rng.standard_normal((count, IMAGE_CODE_DIM))
    attribute_code = rng.standard_normal((count, ATTRIBUTE_CODE_DIM))
    image_mixing = rng.standard_normal((PAIR_DIM + IMAGE_CODE_DIM, int(np.prod(IMAGE_SHAPE))))
    attribute_mixing = rng.standard_normal((PAIR_DIM + ATTRIBUTE_CODE_DIM, ATTRIBUTE_DIM))
    images = np.concatenate([pair, image_code], 1) @ image_mixing / np.sqrt(PAIR_DIM + IMAGE_CODE_DIM)
    attributes = np.concatenate([pair, attribute_code], 1) @ attribute_mixing / np.sqrt(
        PAIR_DIM + ATTRIBUTE_CODE_DIM
    )
    images += NOISE * rng.standard_normal(images.shape)
    attributes += NOISE * rng.standard_normal(attributes.shape)
    np.save(root / IMAGES_FILE, images.reshape(count, *IMAGE_SHAPE).astype(np.float32))
    np.save(root / ATTRIBUTES_FILE, attributes.astype(np.float32))
    category = 2 * (image_code[:, 0] > 0) + (attribute_code[:, 0] > 0)
    rare_event = image_code[:, 1] > RARE_EVENT_QUANTILE
    intensity = np.abs(image_code[:, 2]) + 0.5 * image_code[:, 3] ** 2
    splits = [name for name, size in SPLIT_SIZES.items() for _ in range(size)]
    with (root / LABELS_FILE).open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(LABEL_COLUMNS)
        for row in zip(splits, category, rare_event.astype(int), intensity):
            writer.writerow([row[0], int(row[1]), int(row[2]), f"{row[3]:.6f}"])


def _read_labels(data_dir: Path) -> list[dict[str, str]]:
    path = data_dir / LABELS_FILE
    if not path.is_file():
        raise DataError(f"{path}: label file missing; write the dataset with `orchestrate data`")
    with path.open(newline="") as file:
        rows = list(csv.DictReader(file))
    if not rows or list(rows[0]) != LABEL_COLUMNS:
        raise DataError(f"{path}: expected the header {','.join(LABEL_COLUMNS)} and rows")
    return rows


def check_dataset(data_dir: Path) -> None:
    """Files present, array shapes and label rows agree, train and val non-empty."""
    data_dir = Path(data_dir)
    rows = _read_labels(data_dir)
    for name, shape in ((IMAGES_FILE, IMAGE_SHAPE), (ATTRIBUTES_FILE, (ATTRIBUTE_DIM,))):
        path = data_dir / name
        if not path.is_file():
            raise DataError(f"{path}: missing; write the dataset with `orchestrate data`")
        array = np.load(path, mmap_mode="r")
        if array.shape != (len(rows), *shape):
            raise DataError(f"{path}: shape {array.shape}, expected {(len(rows), *shape)}")
    splits = {row["split"] for row in rows}
    if not {"train", "val"} <= splits:
        raise DataError(f"{data_dir / LABELS_FILE}: needs rows of split train and of split val")


def load_split(data_dir: Path, split: str) -> ZooSplit:
    data_dir = Path(data_dir)
    rows = _read_labels(data_dir)
    index = [i for i, row in enumerate(rows) if row["split"] == split]
    if not index:
        raise DataError(f"{data_dir / LABELS_FILE}: no rows of split {split!r}")
    picked = [rows[i] for i in index]
    return ZooSplit(
        images=torch.from_numpy(np.load(data_dir / IMAGES_FILE)[index]),
        attributes=torch.from_numpy(np.load(data_dir / ATTRIBUTES_FILE)[index]),
        category=torch.tensor([int(row["category"]) for row in picked]),
        rare_event=torch.tensor([int(row["rare_event"]) for row in picked]),
        intensity=torch.tensor([float(row["intensity"]) for row in picked]),
    )


# --- small shared pieces ----------------------------------------------------------------------


def mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Flatten(), nn.Linear(in_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, out_dim))


def derangement(count: int, seed: int = SHUFFLE_SEED) -> torch.Tensor:
    """A fixed-seed permutation with no fixed point: no input stays with its own sample."""
    order = torch.randperm(count, generator=torch.Generator().manual_seed(seed))
    permutation = torch.empty_like(order)
    permutation[order] = order.roll(-1)
    return permutation


@contextlib.contextmanager
def seeded_evaluation() -> Iterator[None]:
    """Run evaluation under a fixed RNG seed (restored after), so it repeats exactly."""
    with torch.random.fork_rng():
        torch.manual_seed(EVAL_SEED)
        yield


def auroc(scores: torch.Tensor, labels: torch.Tensor) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks, so ties count half)."""
    scores, labels = scores.detach().double().flatten(), labels.bool().flatten()
    positives, negatives = int(labels.sum()), int((~labels).sum())
    if positives == 0 or negatives == 0:
        return float("nan")
    values, inverse, counts = torch.unique(scores, return_inverse=True, return_counts=True)
    first_rank = torch.cumsum(counts, 0) - counts + 1
    average_rank = (first_rank + (counts - 1) / 2.0)[inverse]
    rank_sum = average_rank[labels].sum().item()
    return (rank_sum - positives * (positives + 1) / 2) / (positives * negatives)


# --- task skeletons -----------------------------------------------------------------------------


class ZooTask:
    """The Task interface over the zoo dataset; subclasses build the model, loss and metrics."""

    name: str
    metric: str
    mode: str
    config_model = ZooConfig
    value_bounds: dict[str, tuple[float, float]] = {}

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        write_dataset(Path(root), seed)

    def check_data(self, data_dir: Path) -> None:
        check_dataset(Path(data_dir))

    def build(self, config: TrainingConfig, data_dir: Path, device: Any) -> TrialSetup:
        config = config if isinstance(config, ZooConfig) else ZooConfig.model_validate(dict(config))
        check_dataset(Path(data_dir))
        train = self.prepare_split(load_split(data_dir, "train"), "train")
        torch.manual_seed(config.seed)
        model = self.build_model(config).to(device)
        dataset = TensorDataset(train.images, train.attributes, train.category,
                                train.rare_event, train.intensity)
        batches = DataLoader(dataset, batch_size=config.batch_size, shuffle=True, drop_last=True,
                             generator=torch.Generator().manual_seed(config.seed))
        return TrialSetup(model=model, train_batches=batches, device=device,
                          extras={"config": config,
                                  "val": self.prepare_split(load_split(data_dir, "val"), "val")})

    def build_model(self, config: ZooConfig) -> nn.Module:
        raise NotImplementedError

    def prepare_split(self, split: ZooSplit, name: str) -> ZooSplit:
        """The split as the task's data pipeline hands it to the model (as loaded, here)."""
        return split

    def _split(self, setup: TrialSetup, split: str) -> ZooSplit:
        if split != "val":
            raise ValueError(f"the zoo dataset has splits train and val, not {split!r}")
        return setup.extras["val"]


class TwoModalityClassifier(nn.Module):
    """Image encoder and attribute encoder, concatenated, then a linear classifier."""

    def __init__(self, config: ZooConfig, classes: int):
        super().__init__()
        self.image_encoder = mlp(int(np.prod(IMAGE_SHAPE)), config.hidden_dim, config.embed_dim)
        self.attribute_encoder = mlp(ATTRIBUTE_DIM, config.hidden_dim, config.embed_dim)
        self.head = nn.Linear(2 * config.embed_dim, classes)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return self.image_encoder(images)

    def forward(self, images: torch.Tensor, attributes: torch.Tensor) -> torch.Tensor:
        features = torch.cat([self.encode_images(images), self.attribute_encoder(attributes)], -1)
        return self.head(features)


class ClassifierTask(ZooTask):
    """4-class category from image + attributes; accuracy with both inputs and each shuffled."""

    metric, mode = "val/accuracy", "max"
    value_bounds = {
        "train/loss": (0.0, INF),
        "val/*accuracy": (0.0, 1.0),
        "val/chance/*": (0.0, 1.0),
        "probe/*_shuffled/accuracy": (0.0, 1.0),
    }

    def build_model(self, config: ZooConfig) -> nn.Module:
        return TwoModalityClassifier(config, classes=4)

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        images, attributes, category, _, _ = (t.to(setup.device) for t in batch)
        return {"loss": F.cross_entropy(setup.model(images, attributes), category)}

    def _accuracy(self, setup: TrialSetup, images, attributes, category) -> float:
        with torch.no_grad(), seeded_evaluation():
            logits = setup.model(images.to(setup.device), attributes.to(setup.device))
        return (logits.argmax(-1).cpu() == category).double().mean().item()

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        data = self._split(setup, split)
        majority = torch.bincount(data.category).max().item() / len(data)
        return {"accuracy": self._accuracy(setup, data.images, data.attributes, data.category),
                "chance/accuracy": majority}

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Accuracy with the images, then the attributes, shuffled across the val batch."""
        data = self._split(setup, "val")
        moved = derangement(len(data))
        return {
            "image_shuffled/accuracy": self._accuracy(
                setup, data.images[moved], data.attributes, data.category),
            "attributes_shuffled/accuracy": self._accuracy(
                setup, data.images, data.attributes[moved], data.category),
        }


class DualEncoder(nn.Module):
    """Image and attribute encoders into one L2-normalised embedding space."""

    def __init__(self, config: ZooConfig):
        super().__init__()
        self.image_encoder = mlp(int(np.prod(IMAGE_SHAPE)), config.hidden_dim, config.embed_dim)
        self.attribute_encoder = mlp(ATTRIBUTE_DIM, config.hidden_dim, config.embed_dim)

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.image_encoder(images), dim=-1)

    def encode_attributes(self, attributes: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.attribute_encoder(attributes), dim=-1)


class MatcherTask(ZooTask):
    """Match each image with its attribute vector (retrieval, R@1 both ways) via a dual encoder."""

    metric, mode = "val/mean_r1", "max"
    value_bounds = {
        "train/loss": (0.0, INF),  # an InfoNCE is a cross-entropy: never below 0
        "val/*_r*": (0.0, 1.0),
        "val/mrr": (0.0, 1.0),
        "val/rsum": (0.0, 6.0),
        "val/chance/*": (0.0, 1.0),
        "probe/*/offdiag_cosine": (-1.0, 1.0),
        "probe/*_shuffled/mean_r1": (0.0, 1.0),
    }

    def build_model(self, config: ZooConfig) -> nn.Module:
        return DualEncoder(config)

    def matching_loss(self, image_embeddings, attribute_embeddings, config: ZooConfig):
        """Symmetric InfoNCE over the batch (the correct loss)."""
        return symmetric_infonce(image_embeddings, attribute_embeddings, config.temperature)

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        images, attributes = batch[0].to(setup.device), batch[1].to(setup.device)
        loss = self.matching_loss(setup.model.encode_images(images),
                                  setup.model.encode_attributes(attributes),
                                  setup.extras["config"])
        return {"loss": loss}

    def embed(self, setup: TrialSetup, data: ZooSplit) -> tuple[torch.Tensor, torch.Tensor]:
        """Val embeddings, the whole split as one batch: (N, d) images, (N, d) attributes."""
        with torch.no_grad(), seeded_evaluation():
            return (setup.model.encode_images(data.images.to(setup.device)).cpu(),
                    setup.model.encode_attributes(data.attributes.to(setup.device)).cpu())

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        data = self._split(setup, split)
        images, attributes = self.embed(setup, data)
        pairs = torch.arange(len(data))
        return {**retrieval_metrics(images @ attributes.T, pairs), **chance_metrics(len(data))}

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        data = self._split(setup, "val")
        images, attributes = self.embed(setup, data)
        pairs, moved = torch.arange(len(data)), derangement(len(data))
        with torch.no_grad(), seeded_evaluation():
            shuffled_images = setup.model.encode_images(data.images[moved].to(setup.device)).cpu()
        similarity = images @ attributes.T
        return {
            **embedding_statistics(images, "image"),
            **embedding_statistics(attributes, "attributes"),
            "image_shuffled/mean_r1": retrieval_metrics(shuffled_images @ attributes.T, pairs)["mean_r1"],
            **pair_similarities(similarity, pairs[:, None] == pairs[None, :]),
        }


class Detector(nn.Module):
    """Image encoder -> one evidence score -> `score_norm` -> a linear logit for the rare event."""

    def __init__(self, config: ZooConfig, score_norm: nn.Module):
        super().__init__()
        self.encoder = mlp(int(np.prod(IMAGE_SHAPE)), config.hidden_dim, 1)
        self.score_norm = score_norm
        self.head = nn.Linear(1, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.head(self.score_norm(self.encoder(images))).squeeze(-1)


class DetectorTask(ZooTask):
    """Detect the rare event (about 10% positives) from the image; target val/auroc."""

    metric, mode = "val/auroc", "max"
    value_bounds = {"train/loss": (0.0, INF), "val/accuracy": (0.0, 1.0),
                    "val/majority_rate": (0.0, 1.0), "val/auroc": (0.0, 1.0)}

    def build_model(self, config: ZooConfig) -> nn.Module:
        return Detector(config, score_norm=nn.BatchNorm1d(1))

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        images, rare_event = batch[0].to(setup.device), batch[3].to(setup.device)
        return {"loss": F.binary_cross_entropy_with_logits(setup.model(images), rare_event.float())}

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        data = self._split(setup, split)
        with torch.no_grad(), seeded_evaluation():
            logits = setup.model(data.images.to(setup.device)).cpu()
        positives = data.rare_event.double().mean().item()
        return {
            "accuracy": ((logits > 0).long() == data.rare_event).double().mean().item(),
            "majority_rate": max(positives, 1 - positives),
            "auroc": auroc(logits, data.rare_event),
        }

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """AUROC with the images shuffled across the val batch (the only input)."""
        data = self._split(setup, "val")
        with torch.no_grad(), seeded_evaluation():
            logits = setup.model(data.images[derangement(len(data))].to(setup.device)).cpu()
        return {"image_shuffled/auroc": auroc(logits, data.rare_event)}


class IntensityRegressor(nn.Module):
    """Image -> a non-negative intensity (ReLU output)."""

    def __init__(self, config: ZooConfig):
        super().__init__()
        self.layers = mlp(int(np.prod(IMAGE_SHAPE)), config.hidden_dim, 1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return F.relu(self.layers(images)).squeeze(-1)


class RegressorTask(ZooTask):
    """Regress the non-negative intensity from the image; target val/mae (lower is better)."""

    metric, mode = "val/mae", "min"
    value_bounds = {"train/loss": (0.0, INF), "val/mae": (0.0, INF)}

    def build_model(self, config: ZooConfig) -> nn.Module:
        return IntensityRegressor(config)

    def regression_loss(self, predicted: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Mean absolute error plus 0.1 x its spread (penalises a few large misses)."""
        error = (predicted - target).abs()
        return error.mean() + 0.1 * error.std()

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        images, intensity = batch[0].to(setup.device), batch[4].to(setup.device)
        return {"loss": self.regression_loss(setup.model(images), intensity)}

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        data = self._split(setup, split)
        with torch.no_grad(), seeded_evaluation():
            predicted = setup.model(data.images.to(setup.device)).cpu()
        return {"mae": (predicted - data.intensity).abs().mean().item()}

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """None: a single-input regressor has no embedding space and no second modality."""
        return {}
