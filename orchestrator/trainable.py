"""The one generic trial loop: build the task, then per epoch train, evaluate, probe, guard, report.

Ray Tune runs `run_trial` once per trial with the sampled config. Each epoch ends in exactly one
`tune.report` (ASHA's rungs are the reported `epoch`) carrying a checkpoint, so a retried or
resumed trial continues from its last epoch (resume_point.py), exactly as if it had never
stopped: the checkpoint holds the weights, the optimiser and schedule, the global random
generators and the history, and the loop tells the task's batches which epoch comes next. The
report is sent from a thread of its own while the next epoch trains (report_thread.py): the
trial does not wait for the driver to handle it, and stops within a batch when the report ends
the trial.
"""

from __future__ import annotations

import functools
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray
from ray import tune

from orchestrator import rng_state
from orchestrator.data_access import local_data_dir
from orchestrator.devices import device_tags
from orchestrator.health import HealthConfig, check_health
from orchestrator.registry import load_task
from orchestrator.report_thread import Reporter, ReportThread
from orchestrator.resume_point import resume_point
from orchestrator.training import (
    CheckpointState,
    MixedPrecision,
    build_optimizer,
    checkpoint_state,
    load_checkpoint,
    prefixed,
    seed_everything,
    set_epoch,
    train_one_epoch,
    training_device,
    write_checkpoint,
)
from orchestrator.trial_figures import PLOT_SECONDS, TrialFigures, save_figures
from orchestrator.trial_progress import EPOCH_SECONDS, TrialProgress
from orchestrator.unfreezing import (
    apply_unfreezing, regime_span, trainable_block_count, training_regimes)

TRIAL_THREAD_TIMEOUT_ENV = "TUNE_FUNCTION_THREAD_TIMEOUT_S"  # read by Tune when it reuses a worker
TRIAL_THREAD_TIMEOUT_SECONDS = 120


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
    """Ray Tune's entry point: one attempt of a trial, from where the trial had got to."""
    # How long Tune waits for an ended trial's thread before it reuses this worker: the loop
    # ends within a training batch (report_thread.py), and a batch may take longer than 2 s.
    os.environ.setdefault(TRIAL_THREAD_TIMEOUT_ENV, str(TRIAL_THREAD_TIMEOUT_SECONDS))
    start = resume_point(tune.get_checkpoint(), tune.get_context().get_storage(), _report_to_tune)
    if start.ended:
        return
    train_trial(
        config, plan, start.checkpoint, _report_to_tune,
        node_id=ray.get_runtime_context().get_node_id(),  # shows where each trial ran
        gpus_assigned=len(ray.get_gpu_ids()),
    )


def _report_to_tune(result: dict[str, Any], checkpoint_dir: Path) -> None:
    tune.report(result, checkpoint=tune.Checkpoint.from_directory(str(checkpoint_dir)))


def train_trial(
    config: dict[str, Any],
    plan: TrialPlan,
    checkpoint: tune.Checkpoint | None,
    report: Reporter,
    node_id: str | None = None,
    gpus_assigned: int | None = None,
) -> None:
    """Train one trial from its checkpoint (None: from scratch) to its budget or a verdict.

    `report` receives each epoch's result with the directory of its checkpoint (removed once
    it returns), on a thread of its own while the next epoch trains (report_thread.py). This
    returns once the last report has returned; a report that ended the trial (raised
    SystemExit(0), as `tune.report` does) makes this raise that SystemExit within a batch.
    """
    task = load_task(plan.task_reference)
    hyperparameters = task.config_model.model_validate(config)
    seed_everything(hyperparameters.seed)
    # Fails at once, with the facts, when a GPU Ray gave this trial is unusable (no CPU fallback).
    device = training_device(gpus_assigned=gpus_assigned)
    setup = task.build(hyperparameters, local_data_dir(plan.data_dir), device)
    run_tags = device_tags(device)  # where this trial really trained, for MLflow

    optimizer, lr_schedule = build_optimizer(
        setup, hyperparameters, plan.max_epochs, steps_per_epoch=len(setup.train_batches)
    )
    precision = MixedPrecision(setup.device)
    progress = TrialProgress(plan.metric, plan.mode)
    figures = TrialFigures()
    if checkpoint is not None:  # a retried or resumed trial
        with checkpoint.as_directory() as directory:
            progress = load_checkpoint(Path(directory), setup, optimizer, lr_schedule, precision,
                                       plan.metric, plan.mode)

    regimes = training_regimes(hyperparameters, setup.unfreezable_blocks, plan.max_epochs)
    with ReportThread(report) as reports:
        for epoch in range(len(progress.history), plan.max_epochs):
            started = time.perf_counter()
            setup.model.train()
            set_epoch(setup.train_batches, epoch)
            apply_unfreezing(setup.unfreezable_blocks,
                             trainable_block_count(hyperparameters, epoch))
            losses = train_one_epoch(
                task, setup, optimizer, lr_schedule, precision, hyperparameters.grad_clip_norm,
                before_batch=reports.raise_if_ended,
            )
            training_seconds = time.perf_counter() - started
            # Evaluating cannot stop midway: the report of the epoch before has returned first.
            reports.wait()

            evaluating = time.perf_counter()
            setup.model.eval()
            result = {
                "epoch": epoch + 1,
                "node_id": node_id,
                "run_tags": run_tags,
                **prefixed("train", losses),
                **prefixed("val", task.evaluate(setup, "val")),
                **prefixed("probe", task.probe(setup)),
            }
            result[EPOCH_SECONDS] = training_seconds + time.perf_counter() - evaluating
            figures.add_epoch(result[EPOCH_SECONDS])
            progress.add_epoch(result, setup.model)
            regime_start, regime_settled = regime_span(regimes, epoch)  # history index = epoch
            verdict = check_health(
                progress.history,
                metric=plan.metric,
                mode=plan.mode,
                value_bounds=task.value_bounds,
                config=plan.health,
                plausible_max=getattr(task, "plausible_max", None),
                regime_start=regime_start,
                regime_settled=regime_settled,
            )
            if verdict is not None:
                result.update(verdict.to_result())

            # The next epoch starts from the generators' state in this checkpoint on every path,
            # whatever reporting draws from them: resumed or not, the same numbers come next.
            generators = rng_state.capture()
            pngs = {}
            if figures.due(progress.best_is_latest(), stopped=verdict is not None):
                drawing = time.perf_counter()  # after the capture: draws no training numbers
                pngs = figures.draw(task, setup, progress.history)
                result[PLOT_SECONDS] = time.perf_counter() - drawing
            # Copied now, written on the report thread while the next epoch trains.
            state = checkpoint_state(setup, optimizer, lr_schedule, precision, progress,
                                     generators)
            reports.send(result, functools.partial(_write_checkpoint, state, pngs))
            rng_state.restore(generators)
            if verdict is not None:
                return  # the sweep's stopper ends the trial on this result too


def _write_checkpoint(state: CheckpointState, pngs: dict[str, bytes], directory: Path) -> None:
    write_checkpoint(directory, state)
    save_figures(directory, pngs)
