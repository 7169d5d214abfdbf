"""What one epoch of the generic trial loop costs beyond training, per task, measured side by side.

For each task's demo data and default config, times in one process, on one thread:
  train       one pass of training steps (the work a user wants)
  + evaluate  the task's validation metrics
  + probe     the health signals (embedding statistics, shuffled-modality metrics)
  + checkpoint  model + optimiser state written to disk
and prints each part as a ratio of the training time. A part that grows large against training
is what to make cheaper first.

    python -m bench.trial_overhead [--tasks retrieval anomaly ...] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from bench.sweep_runs import demo_data_dir
from orchestrator.registry import builtin_task_names, load_task, task_reference
from orchestrator.training import (
    MixedPrecision, build_optimizer, save_checkpoint, seed_everything, train_one_epoch,
)
from orchestrator.trial_progress import TrialProgress
from orchestrator.unfreezing import apply_unfreezing, trainable_block_count


def measure(task_name: str, epochs: int, data_root: Path) -> dict[str, float]:
    task = load_task(task_reference(task_name))
    data_dir = demo_data_dir(task, data_root)
    config = task.config_model()
    seed_everything(config.seed)
    setup = task.build(config, data_dir, torch.device("cpu"))
    optimizer, schedule = build_optimizer(setup, config, epochs, len(setup.train_batches))
    precision = MixedPrecision(setup.device)
    seconds = {"train": 0.0, "evaluate": 0.0, "probe": 0.0, "checkpoint": 0.0}
    history: list[dict] = []
    with tempfile.TemporaryDirectory() as checkpoint_dir:
        for epoch in range(epochs):
            started = time.perf_counter()
            setup.model.train()
            apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(config, epoch))
            train_one_epoch(task, setup, optimizer, schedule, precision, config.grad_clip_norm)
            seconds["train"] += time.perf_counter() - started
            setup.model.eval()
            started = time.perf_counter()
            metrics = task.evaluate(setup, "val")
            seconds["evaluate"] += time.perf_counter() - started
            started = time.perf_counter()
            task.probe(setup)
            seconds["probe"] += time.perf_counter() - started
            history.append(metrics)
            started = time.perf_counter()
            save_checkpoint(Path(checkpoint_dir), setup, optimizer, schedule, precision,
                            TrialProgress(task.metric, task.mode, history))
            seconds["checkpoint"] += time.perf_counter() - started
    return {part: value / epochs for part, value in seconds.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    print(f"{'task':16} {'train s/epoch':>14} {'evaluate/train':>15} {'probe/train':>12} {'checkpoint/train':>17}")
    for name in args.tasks:
        parts = measure(name, args.epochs, args.data_root)
        train = parts["train"]
        print(f"{name:16} {train:14.3f} {parts['evaluate'] / train:15.2f} {parts['probe'] / train:12.2f} "
              f"{parts['checkpoint'] / train:17.2f}")


if __name__ == "__main__":
    main()
