"""The per-epoch training function every arm of the benchmarks shares.

`trial_epochs` runs one trial of a task the way the sweep's trial loop
(orchestrator/trainable.py) does, built from the same pieces (orchestrator/training.py, the
unfreezing schedule, the health guards), and yields one result per epoch instead of calling
`tune.report`, so a plain Ray Tune trainable, an Optuna objective and the learning-curve
script all drive the same training. The guards run in every arm but act only where the arm
says so: `health/*` keys in a result are what the guards would have said at that epoch.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from orchestrator.health import HealthConfig, check_health
from orchestrator.registry import load_task
from orchestrator.training import (
    MixedPrecision, build_optimizer, prefixed, seed_everything, train_one_epoch, training_device)
from orchestrator.unfreezing import (
    apply_unfreezing, regime_span, trainable_block_count, training_regimes)


@dataclass(frozen=True)
class TrialSpec:
    """What every trial of one task shares in a benchmark (the config is what varies)."""

    task_reference: str
    data_dir: str
    max_epochs: int
    metric: str
    mode: str
    health: HealthConfig


def trial_epochs(config: dict[str, Any], spec: TrialSpec) -> Iterator[dict[str, Any]]:
    """Train one config for up to `spec.max_epochs` epochs, yielding each epoch's result.

    A result holds `epoch`, `train/*`, `val/*`, `probe/*` and, at the epochs where a guard
    would stop the trial, `health/guard`, `health/failure`, `health/reason` (the guards judge
    every epoch; the caller decides whether to stop). Stop iterating to stop the trial.
    """
    task = load_task(spec.task_reference)
    hyperparameters = task.config_model.model_validate(config)
    seed_everything(hyperparameters.seed)
    setup = task.build(hyperparameters, Path(spec.data_dir), training_device())
    optimizer, lr_schedule = build_optimizer(
        setup, hyperparameters, spec.max_epochs, steps_per_epoch=len(setup.train_batches))
    precision = MixedPrecision(setup.device)
    history: list[dict[str, Any]] = []
    regimes = training_regimes(hyperparameters, setup.unfreezable_blocks, spec.max_epochs)
    for epoch in range(spec.max_epochs):
        setup.model.train()
        apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(hyperparameters, epoch))
        losses = train_one_epoch(
            task, setup, optimizer, lr_schedule, precision, hyperparameters.grad_clip_norm)
        setup.model.eval()
        result = {
            "epoch": epoch + 1,
            **prefixed("train", losses),
            **prefixed("val", task.evaluate(setup, "val")),
            **prefixed("probe", task.probe(setup)),
        }
        history.append(result)
        regime_start, regime_settled = regime_span(regimes, epoch)
        verdict = check_health(
            history, metric=spec.metric, mode=spec.mode, value_bounds=task.value_bounds,
            config=spec.health, plausible_max=getattr(task, "plausible_max", None),
            regime_start=regime_start, regime_settled=regime_settled)
        if verdict is not None:
            result.update(verdict.to_result())
        yield result
