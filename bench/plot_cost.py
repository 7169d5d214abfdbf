"""What drawing a task's figures costs against one epoch of its training, measured side by side.

For each task's demo data and default config, in one process on one thread:
  epoch   one pass of training + evaluation + probes (the generic loop's epoch)
  plots   what a trial's worker draws when a figure is due (orchestrator/trial_figures.py):
          the task's own `figures(setup, "val")` from its model as trained so far (ROC/PR,
          recall@K, top-5 grids, similarity histograms, confused classes) plus the health
          probes over the epochs run, rendered to PNG
and prints plots / epoch. A trial draws on new best epochs while plotting stays under a tenth
of its training time (PlotBudget), on its last epoch and on a guard's stop.

    python -m bench.plot_cost [--tasks retrieval anomaly ...] [--epochs 3] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from bench.sweep_runs import demo_data_dir
from orchestrator.registry import builtin_task_names, load_task, task_reference
from orchestrator.training import MixedPrecision, build_optimizer, seed_everything, train_one_epoch
from orchestrator.trial_figures import TrialFigures
from orchestrator.unfreezing import apply_unfreezing, trainable_block_count


def run_epochs(task_name: str, epochs: int, data_root: Path) -> tuple[Any, Any, float, list[dict]]:
    """The task, its trained setup, seconds per epoch (train + evaluate + probe) and the
    reported history, as the loop runs."""
    task = load_task(task_reference(task_name))
    data_dir = demo_data_dir(task, data_root)
    config = task.config_model()
    seed_everything(config.seed)
    setup = task.build(config, data_dir, torch.device("cpu"))
    optimizer, schedule = build_optimizer(setup, config, epochs, len(setup.train_batches))
    history, seconds = [], 0.0
    for epoch in range(epochs):
        started = time.perf_counter()
        setup.model.train()
        apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(config, epoch))
        losses = train_one_epoch(task, setup, optimizer, schedule, MixedPrecision(setup.device),
                                 config.grad_clip_norm)
        setup.model.eval()
        result = {"epoch": epoch + 1, **{f"train/{k}": v for k, v in losses.items()},
                  **{f"val/{k}": v for k, v in task.evaluate(setup, "val").items()},
                  **{f"probe/{k}": v for k, v in task.probe(setup).items()}}
        seconds += time.perf_counter() - started
        history.append(result)
    return task, setup, seconds / epochs, history


def plot_seconds(task: Any, setup: Any, history: list[dict]) -> tuple[float, int]:
    """Seconds the worker's drawing takes (task figures + health probes, to PNG) and how many
    figures it drew."""
    started = time.perf_counter()
    pngs = TrialFigures().draw(task, setup, history)
    return time.perf_counter() - started, len(pngs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="figure sets drawn per task (the median counts)")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':16} {'epoch s':>8} {'figures':>8} {'plots s':>8} {'plots/epoch':>12}")
    for name in args.tasks:
        task, setup, epoch, history = run_epochs(name, args.epochs, args.data_root)
        drawn = [plot_seconds(task, setup, history) for _ in range(args.repeats + 1)][1:]  # 1st: fonts
        seconds = float(np.median([time_taken for time_taken, _ in drawn]))
        print(f"{name:16} {epoch:8.3f} {drawn[0][1]:8d} {seconds:8.3f} {seconds / epoch:12.2f}")


if __name__ == "__main__":
    main()
