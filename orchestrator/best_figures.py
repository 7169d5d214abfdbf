"""The figures of a task's best trials, drawn from their best epoch once its experiment ended.

A trial draws in its own loop only what cannot wait: on a guard's stop (what the guard saw) and
on a new best epoch while plotting stays within its small share of training (plot_budget.py).
On demo-sized epochs one drawing costs about an epoch (bench/plot_cost.py), so drawing at each
trial's last epoch was most of what a trial spent beyond training (bench/trial_overhead.py).
Instead, when a task's experiment has ended, its best trials (`orchestrate sweep --figures-of-best`,
FIGURE_TRIALS unless told) are drawn from the
weights of their best epoch (kept in their latest checkpoint), in Ray tasks with a trial's
resources, side by side on the cluster the trials have left; the PNGs replace each run's
plots/. The pictures in MLflow are then those of the weights `orchestrate best` exports.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import ray
import torch

from orchestrator.data_access import local_data_dir
from orchestrator.outcomes import OutcomeLedger, TrialOutcome
from orchestrator.registry import load_task
from orchestrator.sweep_input import FIGURE_TRIALS
from orchestrator.training import best_weights_file, read_result, seed_everything, training_device
from orchestrator.trial_figures import TrialFigures



def draw_best_epoch(task_reference: str, data_location: str, config: dict[str, Any],
                    checkpoint: Any) -> dict[str, bytes]:
    """The task's figures (and the health probes) of a trial's best epoch, as PNG bytes by name.

    checkpoint: the trial's latest Tune checkpoint (it holds the history and the best epoch's
    weights). Runs where Ray places it: it builds the task on that node's copy of the data.
    """
    task = load_task(task_reference)
    hyperparameters = task.config_model.model_validate(config)
    seed_everything(hyperparameters.seed)
    gpus = len(ray.get_gpu_ids()) if ray.is_initialized() else None
    setup = task.build(hyperparameters, local_data_dir(data_location), training_device(gpus))
    with checkpoint.as_directory() as directory:
        saved = read_result(Path(directory))
        history = saved["history"]
        best_epoch = saved["best_epoch"] or len(history)
        weights = torch.load(best_weights_file(Path(directory), best_epoch, len(history)),
                             map_location=setup.device, weights_only=True)
    setup.model.load_state_dict(weights)
    setup.model.eval()
    return TrialFigures().draw(task, setup, history[:best_epoch])


def leaders_to_draw(ledger: OutcomeLedger, checkpoints: dict[str, Any],
                    count: int = FIGURE_TRIALS) -> list[TrialOutcome]:
    """Of the ledger's `count` best trials, those with a checkpoint to draw from, the winner first."""
    if count <= 0:
        return []
    return [outcome for outcome in ledger.leaders(count)
            if checkpoints.get(outcome.trial_id) is not None]


def draw_leaders(
    leaders: list[TrialOutcome],
    checkpoints: dict[str, Any],
    task_reference: str,
    data_location: str,
    resources: dict[str, float],
    log_figures: Callable[[str, dict[str, bytes]], None],
) -> list[str]:
    """Draw the leaders (best trials, each with a checkpoint; `leaders_to_draw`) side by side.

    checkpoints: trial id -> its latest checkpoint; resources: a trial's ("cpu", "gpu" and
    custom resources, as sweep.trial_resources gives them); log_figures(trial_id, pngs) puts a
    drawing in the trial's run. Returns one line per drawing that failed (a plot never fails
    a sweep).
    """
    custom = {name: amount for name, amount in resources.items() if name not in ("cpu", "gpu")}
    draw = ray.remote(draw_best_epoch).options(
        num_cpus=resources.get("cpu", 1.0), num_gpus=resources.get("gpu", 0.0),
        resources=custom, max_retries=0)
    pending = {
        outcome.trial_id: draw.remote(task_reference, data_location, outcome.config,
                                      checkpoints[outcome.trial_id])
        for outcome in leaders
    }
    problems = []
    for trial_id, drawing in pending.items():
        try:
            log_figures(trial_id, ray.get(drawing))
        except Exception as error:  # noqa: BLE001 - a plot never fails a sweep
            last_line = str(error).strip().splitlines()[-1] if str(error).strip() else type(error).__name__
            problems.append(f"could not draw the figures of trial {trial_id}: {last_line}")
    return problems
