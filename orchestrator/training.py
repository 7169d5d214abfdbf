"""The mechanics under the trial loop: optimiser, learning-rate schedule, one epoch, checkpoints.

Shared by every task, so no task writes its own training loop: a task only computes the loss of
a batch (`Task.training_step`).
"""

from __future__ import annotations

import contextlib
import json
import math
import posixpath
import random
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from torch import nn

from orchestrator import rng_state
from orchestrator.devices import GpuUnusable, cuda_problem, node_ip
from orchestrator.trial_progress import TrialProgress
from orchestrator.unfreezing import param_groups
from tasks.base import Task, TrainingConfig, TrialSetup

MODEL_FILE = "model.pt"  # the latest epoch's weights (the best epoch's in an exported model)
BEST_MODEL_FILE = "best_model.pt"  # the best epoch's weights, when that is not the latest epoch
ENDED_MARKER = "ended.json"  # beside a trial's checkpoints once the trial has ended
TRAINER_STATE_FILE = "trainer_state.pt"
RESULT_FILE = "result.json"  # {"history": [result per epoch], "best_epoch": n}


def training_device(gpus_assigned: int | None = None) -> torch.device:
    """The device to train on: CUDA when GPUs were assigned (or, outside Ray, when CUDA works).

    gpus_assigned: how many GPUs Ray gave this trial (`len(ray.get_gpu_ids())`); None outside
    Ray. A trial given GPUs that torch cannot use raises GpuUnusable (one line: the node, what
    torch sees, the driver and wheel versions) instead of training on the CPU unnoticed.
    """
    if gpus_assigned is None:
        return torch.device("cuda") if torch.cuda.is_available() else torch.device("cpu")
    problem = cuda_problem(gpus_assigned)
    if problem is not None:
        raise GpuUnusable(f"node {node_ip()}: {problem}")
    return torch.device("cuda") if gpus_assigned > 0 else torch.device("cpu")


def seed_everything(seed: int) -> None:
    """Seed torch (CPU and CUDA), numpy and Python's global generators."""
    torch.manual_seed(seed)
    if torch.cuda.is_available():
        torch.cuda.manual_seed_all(seed)
    np.random.seed(seed % 2**32)
    random.seed(seed)


def set_epoch(train_batches: Any, epoch: int) -> None:
    """Tell the training batches that the next pass is `epoch` (0-based), see TrialSetup.

    Called on the batches and on a DataLoader's sampler and batch sampler, whichever have
    `set_epoch`: an epoch-dependent order then follows the epoch, not how many passes this
    process happened to make.
    """
    seen: list[Any] = []
    for candidate in (train_batches, getattr(train_batches, "batch_sampler", None),
                      getattr(train_batches, "sampler", None)):
        if callable(getattr(candidate, "set_epoch", None)) and not any(candidate is s for s in seen):
            candidate.set_epoch(epoch)
            seen.append(candidate)


def build_optimizer(
    setup: TrialSetup, config: TrainingConfig, max_epochs: int, steps_per_epoch: int
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW over the heads and encoder blocks, with linear warm-up then cosine decay to zero.

    The schedule spans the whole budget (`max_epochs`), so a trial pruned early by ASHA saw the
    same learning rates up to its stop as one that runs to the end.
    """
    optimizer = torch.optim.AdamW(
        param_groups(setup.model, setup.unfreezable_blocks, config),
        lr=config.learning_rate,
        weight_decay=config.weight_decay,
    )
    total_steps = max(1, max_epochs * steps_per_epoch)
    warmup_steps = min(total_steps - 1, round(config.warmup_epochs * steps_per_epoch))

    def lr_factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / (warmup_steps + 1)
        progress = (step - warmup_steps) / max(1, total_steps - warmup_steps)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lr_factor)


class MixedPrecision:
    """bf16 autocast on GPUs that have it, fp16 with a gradient scaler on older ones, off on CPU."""

    def __init__(self, device: torch.device):
        self.enabled = device.type == "cuda"
        self.dtype = (
            torch.bfloat16 if self.enabled and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.enabled and self.dtype == torch.float16)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.enabled:
            return contextlib.nullcontext()
        return torch.autocast(device_type="cuda", dtype=self.dtype)


def train_one_epoch(
    task: Task,
    setup: TrialSetup,
    optimizer: torch.optim.Optimizer,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler,
    precision: MixedPrecision,
    grad_clip_norm: float,
    before_batch: Callable[[], None] | None = None,
) -> dict[str, float]:
    """One pass over the training batches; returns each loss term averaged over the epoch.

    before_batch: called before each batch; what it raises ends the epoch there (the trial
    loop's check that Tune has not ended the trial while it trained on, report_thread.py).
    """
    totals: dict[str, float] = {}
    batches = 0
    for batch in setup.train_batches:
        if before_batch is not None:
            before_batch()
        optimizer.zero_grad(set_to_none=True)
        with precision.autocast():
            losses = task.training_step(setup, batch)
        precision.scaler.scale(losses["loss"]).backward()
        if grad_clip_norm > 0:
            precision.scaler.unscale_(optimizer)
            nn.utils.clip_grad_norm_(setup.model.parameters(), grad_clip_norm)
        precision.scaler.step(optimizer)
        precision.scaler.update()
        lr_schedule.step()
        for key, value in losses.items():
            totals[key] = totals.get(key, 0.0) + float(value.detach())
        batches += 1
    if batches == 0:
        raise ValueError("the training split produced no batch; lower batch_size or add data")
    return {key: total / batches for key, total in totals.items()}


@dataclass(frozen=True)
class CheckpointState:
    """What a checkpoint holds, taken at the end of an epoch (`checkpoint_state`); written
    later (`write_checkpoint`), while the next epoch trains."""

    model: dict[str, torch.Tensor]
    best_weights: dict[str, torch.Tensor] | None  # None when the best epoch is the latest
    trainer: dict[str, Any]
    history: list[dict[str, Any]]
    best_epoch: int | None


def checkpoint_state(
    setup: TrialSetup,
    optimizer: torch.optim.Optimizer,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler,
    precision: MixedPrecision,
    progress: TrialProgress,
    generators: dict[str, Any] | None = None,
) -> CheckpointState:
    """The latest weights and the best epoch's, the trainer state with the generators' state
    (rng_state.capture(), now when not given) and the trial's progress, as they are now.

    The weights and the optimiser's state are copied to the CPU (training changes them in
    place); the rest is new or only replaced, never changed (a new best replaces
    progress.best_weights). A copy costs a fraction of serialising and writing the files.
    """
    best_weights = None
    if progress.best_weights is not None and not progress.best_is_latest():
        best_weights = progress.best_weights
    return CheckpointState(
        model=_cpu_copy(setup.model.state_dict()),
        best_weights=best_weights,
        trainer=_cpu_copy({
            "optimizer": optimizer.state_dict(),
            "lr_schedule": lr_schedule.state_dict(),
            "grad_scaler": precision.scaler.state_dict(),
            "generators": generators if generators is not None else rng_state.capture(),
        }),
        history=list(progress.history),
        best_epoch=progress.best_epoch,
    )


def write_checkpoint(directory: Path, state: CheckpointState) -> None:
    """Write `state` into `directory`: the latest weights and the best epoch's (both loadable
    with weights_only=True), the trainer state and the trial's progress."""
    torch.save(state.model, directory / MODEL_FILE)
    if state.best_weights is not None:
        torch.save(state.best_weights, directory / BEST_MODEL_FILE)
    torch.save(state.trainer, directory / TRAINER_STATE_FILE)
    (directory / RESULT_FILE).write_text(json.dumps(
        {"history": state.history, "best_epoch": state.best_epoch}, default=float))


def save_checkpoint(
    directory: Path,
    setup: TrialSetup,
    optimizer: torch.optim.Optimizer,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler,
    precision: MixedPrecision,
    progress: TrialProgress,
    generators: dict[str, Any] | None = None,
) -> None:
    """Write the checkpoint of the trial as it is now (`checkpoint_state`) into `directory`."""
    write_checkpoint(directory, checkpoint_state(setup, optimizer, lr_schedule, precision,
                                                 progress, generators))


def _cpu_copy(value: Any) -> Any:
    """`value` with every tensor in it copied to the CPU, and its dicts, lists and tuples new."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu", copy=True)
    if isinstance(value, dict):
        return {key: _cpu_copy(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(_cpu_copy(item) for item in value)
    return value


def load_checkpoint(
    directory: Path,
    setup: TrialSetup,
    optimizer: torch.optim.Optimizer,
    lr_schedule: torch.optim.lr_scheduler.LRScheduler,
    precision: MixedPrecision,
    metric: str,
    mode: str,
) -> TrialProgress:
    """Restore a trial from its checkpoint: weights, trainer state, the global generators;
    returns its progress (history and best epoch)."""
    setup.model.load_state_dict(
        torch.load(directory / MODEL_FILE, map_location=setup.device, weights_only=True)
    )
    state = torch.load(directory / TRAINER_STATE_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(state["optimizer"])
    lr_schedule.load_state_dict(state["lr_schedule"])
    precision.scaler.load_state_dict(state["grad_scaler"])
    rng_state.restore(state["generators"])
    saved = read_result(directory)
    progress = TrialProgress(metric, mode, saved["history"], saved["best_epoch"])
    if progress.best_is_latest():
        progress.best_weights = {key: tensor.detach().to("cpu", copy=True)
                                 for key, tensor in setup.model.state_dict().items()}
    elif progress.best_epoch is not None:
        progress.best_weights = torch.load(directory / BEST_MODEL_FILE, map_location="cpu",
                                           weights_only=True)
    return progress


def read_result(directory: Path) -> dict[str, Any]:
    """A checkpoint's result.json: {"history": [...], "best_epoch": n or None}."""
    saved = json.loads((directory / RESULT_FILE).read_text())
    saved.setdefault("best_epoch", None)
    return saved


def checkpoint_is_complete(directory: Path, read_archives: bool = True) -> bool:
    """Whether `directory` holds a whole checkpoint that load_checkpoint can restore.

    A copy cut off by a kill, or a deletion cut off half way, leaves a checkpoint directory
    without some files or with a truncated one; torch.save writes zip archives, whose every
    member's checksum is read here. Without `read_archives` only the files' presence is checked:
    enough for a checkpoint Tune registered (written whole before it was reported), which a kill
    can only have half deleted.
    """
    try:
        saved = read_result(directory)
        history, best_epoch = saved["history"], saved["best_epoch"]
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False
    files = [MODEL_FILE, TRAINER_STATE_FILE]
    if best_epoch is not None and best_epoch != len(history):
        files.append(BEST_MODEL_FILE)
    for name in files:
        if not read_archives:
            if not (directory / name).is_file():
                return False
            continue
        try:
            with zipfile.ZipFile(directory / name) as archive:
                if archive.testzip() is not None:
                    return False
        except (OSError, zipfile.BadZipFile):
            return False
    return isinstance(history, list) and len(history) > 0


def best_weights_file(directory: Path, best_epoch: int, epochs: int) -> Path:
    """The file in a checkpoint directory with the weights of its best epoch."""
    return directory / (MODEL_FILE if best_epoch == epochs else BEST_MODEL_FILE)


def mark_ended(checkpoint: Any) -> None:
    """Leave a marker in the trial's directory (beside its checkpoints) that the trial ended
    with `checkpoint` (its latest), naming that checkpoint.

    A driver killed after a trial ended but before Tune snapshotted the experiment resumes that
    trial from an older checkpoint; the marker lets it end at once instead of training again,
    and says which checkpoint it really ended with (see ended_checkpoint).
    """
    trial_dir = posixpath.dirname(checkpoint.path.rstrip("/"))
    marker = json.dumps({"checkpoint": posixpath.basename(checkpoint.path.rstrip("/"))})
    with checkpoint.filesystem.open_output_stream(posixpath.join(trial_dir, ENDED_MARKER)) as stream:
        stream.write(marker.encode())


def has_ended(checkpoint: Any) -> bool:
    """Whether the trial owning this checkpoint was marked ended (see mark_ended)."""
    from pyarrow.fs import FileType

    trial_dir = posixpath.dirname(checkpoint.path.rstrip("/"))
    marker = checkpoint.filesystem.get_file_info(posixpath.join(trial_dir, ENDED_MARKER))
    return marker.type == FileType.File


def ended_checkpoint(trial_dir: str, filesystem: Any) -> Any:
    """The checkpoint a trial ended with, from the marker in its directory `trial_dir` (on the
    pyarrow `filesystem` of its storage); None when the trial was not marked ended, or its
    marker names no checkpoint that still has its result file (a marker written before
    markers named their checkpoint names none)."""
    from pyarrow.fs import FileType
    from ray import tune

    marker = posixpath.join(trial_dir.rstrip("/"), ENDED_MARKER)
    if filesystem.get_file_info(marker).type != FileType.File:
        return None
    with filesystem.open_input_stream(marker) as stream:
        text = stream.read().decode(errors="replace")
    try:
        name = json.loads(text).get("checkpoint")
    except (ValueError, AttributeError):
        return None
    path = posixpath.join(trial_dir.rstrip("/"), str(name or ""))
    if not name or filesystem.get_file_info(posixpath.join(path, RESULT_FILE)).type != FileType.File:
        return None
    return tune.Checkpoint(path, filesystem=filesystem)


def prefixed(prefix: str, values: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}/{key}": float(value) for key, value in values.items()}
