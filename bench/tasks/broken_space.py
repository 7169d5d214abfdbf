"""A plug-in task whose search space has a broken region: a small dual encoder matching two
synthetic "modalities" of the same latent code.

It exists for bench/compare.py: the matcher trains well over most of its space, but its
similarity is a plain dot product of unnormalised embeddings (as some matchers score pairs) and
its loss normalises the softmax by hand, exp(s / t) / sum exp(s / t), as first implementations
of InfoNCE often do. exp overflows float32 once a score s exceeds 88.7 t, and the result is
inf / inf = NaN:
  - a temperature under BROKEN_TEMPERATURE overflows at once, from the scores at init;
  - a learning rate over BROKEN_LEARNING_RATE grows the embeddings past it within the first
    epoch (larger embeddings always lower an InfoNCE of unnormalised scores).
`in_broken_region(config)` says from the config alone whether a trial lies in that region, so
the benchmark can count the compute each arm spends there. The thresholds were measured on
this data: of 40 random configs of the space, 35 went NaN exactly when inside them; the other
5 lie near the edge (learning rates 0.009-0.025), where whether exp overflows also depends on
the temperature and the weight decay.

Dataset layout under data_dir (written by `make_demo_data`, deterministic in the seed):
    <split>_images.npy  (N, IMAGE_DIM) float32    "image" features of sample i
    <split>_texts.npy   (N, TEXT_DIM) float32     "text" features of the same sample i
for split in train, val. Both are noisy nonlinear views of one latent code per sample, so
pairs can be matched (val: mean R@1 over N candidates) but never perfectly.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from tasks.base import INF, DataError, DataReport, TrainingConfig, TrialSetup
from tasks.common.embedding_stats import (
    EMBEDDING_PROBE_BOUNDS, PAIR_SIMILARITY_BOUNDS, embedding_statistics, pair_similarities)
from tasks.common.retrieval_metrics import RETRIEVAL_METRIC_BOUNDS, chance_metrics, retrieval_metrics

SPLIT_SIZES = {"train": 4096, "val": 256}
LATENT_DIM, IMAGE_DIM, TEXT_DIM = 12, 32, 24
NOISE = 0.35  # noise std as a share of each view's std: the best R@1 stays under 0.9
BROKEN_TEMPERATURE = 0.004
BROKEN_LEARNING_RATE = 0.012


def in_broken_region(config: dict[str, Any]) -> bool:
    """Whether a config lies in the space's broken region (see the module docstring)."""
    return (config.get("temperature", 1.0) < BROKEN_TEMPERATURE
            or config.get("learning_rate", 0.0) > BROKEN_LEARNING_RATE)


class BrokenSpaceConfig(TrainingConfig):
    """The generic loop's fields plus the matcher's sizes and its temperature."""

    temperature: float = Field(0.07, gt=0, description="softmax temperature of the matching loss")
    hidden_dim: int = Field(128, ge=1, description="width of each encoder's hidden layer")
    embed_dim: int = Field(32, ge=1, description="embedding dimension")


class DualEncoder(nn.Module):
    def __init__(self, config: BrokenSpaceConfig):
        super().__init__()
        self.image_encoder = _mlp(IMAGE_DIM, config.hidden_dim, config.embed_dim)
        self.text_encoder = _mlp(TEXT_DIM, config.hidden_dim, config.embed_dim)

    def forward(self, images: torch.Tensor, texts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.image_encoder(images), self.text_encoder(texts)


def _mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, hidden_dim), nn.ReLU(),
                         nn.Linear(hidden_dim, out_dim))


def hand_normalised_infonce(images: torch.Tensor, texts: torch.Tensor, temperature: float) -> torch.Tensor:
    """Symmetric InfoNCE with the softmax normalised by hand: exp(s/t) / sum exp(s/t).

    images, texts: (B, d), pair i on row i; s = images @ texts.T. Mathematically the
    cross-entropy of tasks.common.contrastive.infonce_from_similarity; numerically it overflows
    to inf / inf = NaN once a score exceeds 88.7 * temperature (the broken region).
    """
    weights = torch.exp(images @ texts.T / temperature)
    image_to_text = weights.diagonal() / weights.sum(dim=1)
    text_to_image = weights.diagonal() / weights.sum(dim=0)
    return -(image_to_text.log().mean() + text_to_image.log().mean()) / 2


class BrokenSpaceTask:
    name = "broken_space"
    metric = "val/mean_r1"
    mode = "max"
    config_model = BrokenSpaceConfig
    value_bounds = {
        "train/loss": (0.0, INF),  # a cross-entropy: never below 0
        **RETRIEVAL_METRIC_BOUNDS,
        "val/chance/*": (0.0, 1.0),
        **EMBEDDING_PROBE_BOUNDS,
        **PAIR_SIMILARITY_BOUNDS,
    }

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        root = Path(root)
        root.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng(seed)
        image_mixing = rng.standard_normal((LATENT_DIM, IMAGE_DIM)) / np.sqrt(LATENT_DIM)
        text_mixing = rng.standard_normal((LATENT_DIM, TEXT_DIM)) / np.sqrt(LATENT_DIM)
        for split, count in SPLIT_SIZES.items():
            latent = rng.standard_normal((count, LATENT_DIM))
            images = np.tanh(2.0 * latent @ image_mixing)
            texts = latent @ text_mixing
            texts = np.sign(texts) * np.abs(texts) ** 1.5  # a different nonlinearity per modality
            images += NOISE * images.std() * rng.standard_normal(images.shape)
            texts += NOISE * texts.std() * rng.standard_normal(texts.shape)
            np.save(root / f"{split}_images.npy", images.astype(np.float32))
            np.save(root / f"{split}_texts.npy", texts.astype(np.float32))

    def check_data(self, data_dir: Path) -> DataReport:
        report = DataReport(layout="broken_space arrays (<split>_images.npy + <split>_texts.npy)",
                            unit="pairs")
        for split in SPLIT_SIZES:
            shapes = {}
            for modality, width in (("images", IMAGE_DIM), ("texts", TEXT_DIM)):
                path = Path(data_dir) / f"{split}_{modality}.npy"
                if not path.is_file():
                    report.problems.append(f"{path}: missing; write the data with make_demo_data")
                    continue
                shape = np.load(path, mmap_mode="r").shape
                if len(shape) != 2 or shape[1] != width:
                    report.problems.append(f"{path}: shape {shape}, expected (N, {width})")
                shapes[modality] = shape[0]
            if len(set(shapes.values())) > 1:
                report.problems.append(f"{data_dir}: {split} has {shapes} rows; pairs need equal counts")
            elif shapes:
                report.splits[split] = next(iter(shapes.values()))
        return report

    def build(self, config: BrokenSpaceConfig, data_dir: Path, device: Any) -> TrialSetup:
        train, val = (self._load(Path(data_dir), split) for split in ("train", "val"))
        torch.manual_seed(config.seed)
        model = DualEncoder(config).to(device)
        batches = DataLoader(TensorDataset(*train), batch_size=config.batch_size, shuffle=True,
                             drop_last=True, generator=torch.Generator().manual_seed(config.seed))
        return TrialSetup(model=model, train_batches=batches, device=device,
                          extras={"config": config, "val": val})

    @staticmethod
    def _load(data_dir: Path, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            return (torch.from_numpy(np.load(data_dir / f"{split}_images.npy")),
                    torch.from_numpy(np.load(data_dir / f"{split}_texts.npy")))
        except FileNotFoundError as error:
            raise DataError(f"{error.filename}: missing; write the data with make_demo_data") from None

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, torch.Tensor]:
        images, texts = setup.model(batch[0].to(setup.device), batch[1].to(setup.device))
        return {"loss": hand_normalised_infonce(images, texts, setup.extras["config"].temperature)}

    def _embed(self, setup: TrialSetup, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split != "val":
            raise ValueError(f"the broken_space data has splits train and val, not {split!r}")
        images, texts = setup.extras["val"]
        with torch.no_grad():
            return setup.model(images.to(setup.device), texts.to(setup.device))

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        images, texts = self._embed(setup, split)
        count = images.shape[0]
        return {**retrieval_metrics(images @ texts.T, torch.arange(count)),
                **chance_metrics(count), "samples": float(count)}

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        images, texts = self._embed(setup, "val")
        pairs = torch.arange(images.shape[0])
        return {**embedding_statistics(images, "image"), **embedding_statistics(texts, "text"),
                **pair_similarities(F.normalize(images, dim=-1) @ F.normalize(texts, dim=-1).T,
                                    pairs[:, None] == pairs[None, :])}


task = BrokenSpaceTask()
