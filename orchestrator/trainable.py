"""The one generic trial loop: build the task, then per epoch train, evaluate, probe, guard, report.

Ray Tune runs `run_trial` once per trial with the sampled config. Each epoch ends in exactly one
`tune.report` (so ASHA's `training_iteration` counts epochs) carrying a checkpoint, so a retried
or resumed trial continues from its last epoch.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from orchestrator.data_access import local_data_dir
from orchestrator.devices import device_tags
from orchestrator.health import HealthConfig, check_health
from orchestrator.registry import load_task
from orchestrator.training import (
    MixedPrecision,
    build_optimizer,
    has_ended,
    load_checkpoint,
    prefixed,
    save_checkpoint,
    seed_everything,
    train_one_epoch,
    training_device,
)
from orchestrator.unfreezing import apply_unfreezing, trainable_block_count


@dataclass(frozen=True)
class TrialPlan:
    """What every trial of one task's sweep shares (the config is what varies)."""

    task_reference: str
    data_dir: str  # a path every node has, or a URI each node fetches once (data_access)
    max_epochs: int
    metric: str
    mode: str
    health: HealthConfig


def run_trial(config: dict[str, Any], plan: TrialPlan) -> None:
    task = load_task(plan.task_reference)
    node_id = ray.get_runtime_context().get_node_id()  # shows where each trial ran
    hyperparameters = task.config_model.model_validate(config)
    seed_everything(hyperparameters.seed)
    # Fails at once, with the facts, when a GPU Ray gave this trial is unusable (no CPU fallback).
    device = training_device(gpus_assigned=len(ray.get_gpu_ids()))
    setup = task.build(hyperparameters, local_data_dir(plan.data_dir), device)
    run_tags = device_tags(device)  # where this trial really trained, for MLflow

    optimizer, lr_schedule = build_optimizer(
        setup, hyperparameters, plan.max_epochs, steps_per_epoch=len(setup.train_batches)
    )
    precision = MixedPrecision(setup.device)
    history: list[dict[str, Any]] = []
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None and has_ended(checkpoint):
        return  # it ended before its sweep was interrupted; Tune's snapshot predates that
    if checkpoint is not None:  # a retried or resumed trial
        with checkpoint.as_directory() as directory:
            history = load_checkpoint(Path(directory), setup, optimizer, lr_schedule, precision)

    for epoch in range(len(history), plan.max_epochs):
        setup.model.train()
        apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(hyperparameters, epoch))
        losses = train_one_epoch(
            task, setup, optimizer, lr_schedule, precision, hyperparameters.grad_clip_norm
        )

        setup.model.eval()
        result = {
            "epoch": epoch + 1,
            "node_id": node_id,
            "run_tags": run_tags,
            **prefixed("train", losses),
            **prefixed("val", task.evaluate(setup, "val")),
            **prefixed("probe", task.probe(setup)),
        }
        history.append(result)
        verdict = check_health(
            history,
            metric=plan.metric,
            mode=plan.mode,
            value_bounds=task.value_bounds,
            config=plan.health,
            plausible_max=getattr(task, "plausible_max", None),
        )
        if verdict is not None:
            result.update(verdict.to_result())

        with tempfile.TemporaryDirectory() as directory:
            save_checkpoint(Path(directory), setup, optimizer, lr_schedule, precision, history)
            tune.report(result, checkpoint=tune.Checkpoint.from_directory(directory))
        if verdict is not None:
            return  # the sweep's stopper ends the trial on this result too
