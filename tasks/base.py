"""The task interface: everything the orchestrator may call on a training task.

A task is any object with the attributes and methods of `Task` below. Built-in tasks live in
this package; a user's own task is named as `package.module:object`. The orchestrator owns the
training loop (optimiser, schedule, unfreezing, AMP, checkpoints, reporting); a task owns its
data, its model, its loss (`training_step`), its metrics (`evaluate`) and its health signals
(`probe`). Tasks never import the orchestrator.

Reported keys: the loop prefixes what a task returns, so `training_step` -> `train/<key>`
(averaged over the epoch), `evaluate(setup, "val")` -> `val/<key>`, `probe` -> `probe/<key>`.
The target metric is named with its prefix, e.g. `val/mean_r1`.

Probe keys the health guards understand (all optional; report what the task has;
`tasks.common.embedding_stats.embedding_statistics` computes the first three items' keys):
- `<modality>/offdiag_cosine`: mean off-diagonal cosine similarity of the modality's
  L2-normalised embeddings on validation data (near 1 = collapsed).
- `<modality>/dim_std`: mean over dimensions of the per-dimension standard deviation of the
  L2-normalised embeddings; `<modality>/dim`: the embedding dimension d (healthy ~ 1/sqrt(d)).
- `<modality>/zero_fraction`: the share of the modality's embeddings that are zero vectors
  (a dead ReLU before the normalisation; the cosine of a zero vector is 0, so only this and
  dim_std see it); `<modality>/mean_norm`: their mean norm before normalisation.
- `<modality>_shuffled/<metric>`: the task's metric (unprefixed name, e.g. `mean_r1`) computed
  with that modality's inputs shuffled across the val set, to compare with `val/<metric>`.
  Shuffled probes of the target metric also let the leakage guard see one modality alone
  reaching the ceiling.
- `positive_similarity`, `negative_similarity`: mean cosine of matching and non-matching pairs.
Evaluation keys the guards understand: `chance/<metric>` (the metric's chance level on this
split, e.g. 1 / number of images for R@1), `majority_rate` (beside an `accuracy`), and the
size of the split's noise: `samples` (how many samples the split's metrics average over:
images, scenes, pairs) or `stderr/<metric>` (that metric's standard error, e.g. from a
bootstrap). Without them the guards judge the val metrics with fixed margins instead of the
val set's own noise (orchestrator/health/noise.py).

Optional method: `figures(setup, split) -> dict[str, matplotlib.figure.Figure]`, the figures a
person reads the model from at a glance (ROC curves, retrieval examples, similarity histograms;
tasks/common/figures.py draws them), keyed by a file name without extension. The trial loop
calls it on a new best epoch with the model in eval mode (within a plotting budget, never in
the training's random stream) and MLflow shows the PNGs under the trial run's `plots/`; the
health probes over epochs are drawn by the orchestrator. A failing figure is skipped.

Optional attribute: `plausible_max: dict[str, float]`, a reported key (e.g. "val/accuracy")
-> the highest value a correct model plausibly reaches on the task's real data (the best
published result plus a margin). A metric above it is stopped as a leak (labels reaching the
inputs). Declare only values the demo data also stays under; a search space may override it
(`health: {leakage: {plausible_max: {...}}}`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Literal, Optional, Protocol, runtime_checkable

from pydantic import BaseModel, ConfigDict, Field

INF = math.inf


class DataError(ValueError):
    """The dataset on disk is missing, empty or corrupt. The message is one line for a user."""


MAX_LISTED_PROBLEMS = 20


@dataclass
class DataReport:
    """What `Task.check_data` found in a dataset directory, without training anything.

    layout: the on-disk layout recognised, one phrase a user knows it by (e.g. "Flickr8k,
        Kaggle download (Images/ + captions.txt)").
    splits: split name -> number of samples in it (counted in `unit`), in split order.
    unit: what one sample is ("images", "scenes", "pairs", ...).
    sources: one line per choice the reader made, naming the file it used and why (which
        caption file, where the split came from, how two sensors' points were aligned).
    problems: every problem found, one line each naming the file and the fix; the dataset
        cannot be used while there is any.
    leaks: label leaks found in the data itself (inputs that carry the label, a sample in two
        splits); refused like problems unless the user explicitly allows them.
    """

    layout: str
    splits: dict[str, int] = field(default_factory=dict)
    unit: str = "samples"
    sources: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    leaks: list[str] = field(default_factory=list)

    def raise_if_unusable(self, allow_leaks: bool = False) -> None:
        """DataError (one line: the first problem and how many more) when the data is unusable."""
        blocking = self.problems + ([] if allow_leaks else self.leaks)
        if not blocking:
            return
        more = len(blocking) - 1
        suffix = f" (and {more} more problem{'s' if more > 1 else ''})" if more else ""
        raise DataError(blocking[0] + suffix)


class TrainingConfig(BaseModel):
    """Hyperparameters the generic trial loop reads; each task's config extends this class.

    Unknown keys are rejected so that a typo in a search space fails before any trial starts.
    """

    model_config = ConfigDict(extra="forbid")

    learning_rate: float = Field(1e-3, gt=0, description="peak AdamW learning rate")
    weight_decay: float = Field(0.01, ge=0, description="AdamW decoupled weight decay")
    batch_size: int = Field(64, ge=2, description="training batch size")
    warmup_epochs: float = Field(0.5, ge=0, description="linear warm-up length, in epochs")
    grad_clip_norm: float = Field(1.0, ge=0, description="max gradient norm; 0 turns clipping off")
    seed: int = Field(0, description="seed for model init and data order")
    num_workers: int = Field(0, ge=0, description="DataLoader worker processes")
    # Progressive unfreezing of the task's pretrained encoders (see orchestrator/unfreezing.py):
    # before `unfreeze_start_epoch` every unfreezable block is frozen; at that epoch and every
    # `unfreeze_stage_epochs` after it, `unfreeze_layers_per_stage` more blocks of each encoder
    # are freed, top (nearest the head) first, for `unfreeze_stages` stages. Freed blocks train at
    # `learning_rate * unfreeze_lr_scale`. `unfreeze_stages: 0` trains every block from epoch 0.
    unfreeze_start_epoch: int = Field(0, ge=0)
    unfreeze_stages: int = Field(0, ge=0)
    unfreeze_layers_per_stage: int = Field(1, ge=1)
    unfreeze_stage_epochs: int = Field(1, ge=1)
    unfreeze_lr_scale: float = Field(1.0, gt=0)
    # The preflight before a sweep sets this to build, step, evaluate and probe a trial in
    # seconds; a task that honours it loads at most this many samples of each split it reads
    # (the first ones in the split's order, so the subset is the same every time).
    max_samples_per_split: Optional[int] = Field(
        None, ge=2, description="load at most this many samples per split (quick checks)"
    )


@dataclass
class TrialSetup:
    """What `Task.build` returns: the pieces of one trial the generic loop drives.

    model: the whole trainable model (its state_dict is what gets checkpointed and exported).
    train_batches: re-iterable per epoch with a len() (e.g. a DataLoader); each pass is one
        epoch, its items go to training_step, and len() (batches per epoch) sizes the schedule.
    unfreezable_blocks: per encoder name, its blocks ordered top (nearest the head) first; the
        loop freezes and frees them by the unfreezing schedule. Parameters of the model that are
        in no block always train at the base learning rate.
    device: where the model lives.
    extras: task-private state (tokeniser, cached validation tensors, ...).

    Declaring unfreezable blocks (progressive unfreezing, the config's `unfreeze_*` fields):
    - Hand over each encoder that starts from pretrained weights, as a list of its blocks (any
      `nn.Module`s of `model`), top first: the block nearest the head is freed first. A block is
      what one stage frees, e.g. a ResNet's [layer4, layer3, layer2, layer1, stem], the small
      CNN's conv blocks last first, a BERT's layers last first then its embeddings
      (`blocks_top_first()` of tasks/common/image_encoders.py and text_encoders.py).
    - Leave out an encoder that starts from random init: it then always trains, at the base
      rate (freezing random weights only hides the input).
    - Every parameter may be in at most one block. What the loop does with them
      (orchestrator/unfreezing.py): blocks form their own optimiser group at
      `learning_rate * unfreeze_lr_scale` (also with `unfreeze_stages: 0`); each epoch, after
      `model.train()`, a frozen block gets `requires_grad=False` and its BatchNorm layers are put
      back in eval mode, so neither its weights nor its running statistics move. So
      `training_step` must not call `model.train()`, and `evaluate`/`probe` should restore every
      module's train/eval flag when they finish (as the built-in tasks do).
    - Weight paths: a relative path in the config is best read from `data_dir`
      (`tasks.common.local_weights.with_resolved_weights`), so a dataset directory can carry its
      encoders (the demos' `pretrained/`).
    The built-in tasks are the examples: retrieval hands over "image" and "text"
    (`DualEncoder.unfreezable_blocks`), multiview its "backbone", cub_attributes and anomaly
    their "image" branch; zh_matching none (its region features are precomputed). In short:

        config = with_resolved_weights(config, data_dir, ("image_weights",))
        encoder = build_image_encoder(config.image_encoder, config.image_weights)
        model = MyModel(encoder).to(device)
        blocks = {"image": encoder.blocks_top_first()} if config.image_weights else {}
        return TrialSetup(model, batches, device, unfreezable_blocks=blocks)
    """

    model: Any
    train_batches: Iterable[Any]
    device: Any
    unfreezable_blocks: dict[str, list[Any]] = field(default_factory=dict)
    extras: dict[str, Any] = field(default_factory=dict)


@runtime_checkable
class Task(Protocol):
    """The interface a training task provides (see the module docstring for key names)."""

    name: str
    metric: str  # target metric with its prefix, e.g. "val/mean_r1"
    mode: Literal["max", "min"]
    config_model: type[TrainingConfig]
    # Reported key (with prefix, fnmatch patterns allowed) -> (lowest, highest) possible value.
    # A loss declares its floor here (InfoNCE >= 0); probabilities and recalls declare [0, 1].
    value_bounds: dict[str, tuple[float, float]]

    def make_demo_data(self, root: Path, seed: int = 0) -> None:
        """Write a small dataset in the task's real on-disk layout, with a learnable signal."""

    def check_data(self, data_dir: Path) -> DataReport:
        """Inspect data_dir without training: the layout found, samples per split, every problem.

        Cheap (headers, not pixels) and never raises for problems in the data: they are listed
        in the report. (A task may still raise DataError, or return None; the orchestrator then
        reports that one line, or an unnamed layout.)"""

    def build(self, config: TrainingConfig, data_dir: Path, device: Any) -> TrialSetup:
        """Load data from data_dir and build the model for one trial (deterministic in config)."""

    def training_step(self, setup: TrialSetup, batch: Any) -> dict[str, Any]:
        """Compute the loss on one batch; returns tensors, "loss" (to minimise) plus its parts."""

    def evaluate(self, setup: TrialSetup, split: str) -> dict[str, float]:
        """The task's real metrics on a split ("val" or "test"), model in eval mode."""

    def probe(self, setup: TrialSetup) -> dict[str, float]:
        """Health signals on validation data (embedding statistics, shuffled-modality metric)."""
