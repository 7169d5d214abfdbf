"""What drawing a task's figures costs against one epoch of its training, measured side by side.

For each task's demo data and default config, in one process on one thread:
  epoch   one pass of training + evaluation + probes (the generic loop's epoch)
  plots   the task's typical figure set rendered to PNG (tasks/common/figures.py):
          retrieval, zh_matching  recall@K, a 3-query top-5 retrieval grid, similarity histograms
          anomaly                 ROC and PR curves
          multiview               ROC and PR curves, similarity histograms
          cub_attributes          the most confused class pairs
          every task              its health probes over the epochs run (its real probe values)
and prints plots / epoch. The figures are drawn on new best epochs only; a ratio well under 1
means a best epoch costs little more than any other.

The probe panel draws the task's real reported probes; the other figures draw inputs of the
task's validation size (retrieval and zh_matching: images from 1 / chance, 5 captions each;
the others: a size at or above their demo val split), with seeded values, because tasks do not
hand their scores out yet and drawing time depends on the sizes, not the values.

    python bench/plot_cost.py [--tasks retrieval anomaly ...] [--epochs 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from orchestrator.registry import builtin_task_names, load_task, task_reference
from orchestrator.training import MixedPrecision, build_optimizer, seed_everything, train_one_epoch
from orchestrator.unfreezing import apply_unfreezing, trainable_block_count
from tasks.common.figures import (
    RetrievedItem, confused_class_pairs, health_probes, png_bytes, recall_at_k_curves,
    retrieval_examples, roc_pr_curves, similarity_histograms, top_retrieved,
)

VAL_SIZES = {"anomaly": 200, "multiview": 400, "cub_attributes": 400}  # >= the demo val splits
CUB_CLASSES = 20


def run_epochs(task_name: str, epochs: int, data_root: Path) -> tuple[float, list[dict]]:
    """Seconds per epoch (train + evaluate + probe) and the reported history, as the loop runs."""
    task = load_task(task_reference(task_name))
    data_dir = data_root / task_name
    if not data_dir.exists():
        task.make_demo_data(data_dir, seed=0)
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
    return seconds / epochs, history


def figure_set(task_name: str, history: list[dict]) -> list:
    """The task's typical figures (see the module docstring), inputs of its validation size."""
    generator = np.random.default_rng(0)
    figures = [health_probes(history)]
    if task_name in ("retrieval", "zh_matching"):
        images = round(1 / history[-1]["val/chance/mean_r1"])
        match = np.repeat(np.eye(images, dtype=bool), 5, axis=1)
        similarity = generator.normal(0.1, 0.2, (images, images * 5)) + 0.5 * match
        queries = top_retrieved(similarity, [0, 1, 2], k=5)
        thumbnail = generator.random((32, 32, 3)) if task_name == "retrieval" else None
        rows = [(RetrievedItem(image=thumbnail, text=f"query image {q}"),
                 [RetrievedItem(text=f"caption {j}: a small red circle left of a blue square", correct=j // 5 == q)
                  for j in found]) for q, found in zip([0, 1, 2], queries)]
        figures += [recall_at_k_curves(similarity), retrieval_examples(rows),
                    similarity_histograms(similarity[match], similarity[~match])]
    elif task_name in ("anomaly", "multiview"):
        count = VAL_SIZES[task_name]
        labels = generator.random(count) < 0.5
        figures.append(roc_pr_curves(labels + generator.normal(0, 0.7, count), labels))
        if task_name == "multiview":
            figures.append(similarity_histograms(generator.normal(0.6, 0.2, count // 2),
                                                 generator.normal(0.1, 0.3, count // 2)))
    elif task_name == "cub_attributes":
        count = VAL_SIZES[task_name]
        labels = generator.integers(0, CUB_CLASSES, count)
        predictions = np.where(generator.random(count) < 0.5, labels, generator.integers(0, CUB_CLASSES, count))
        names = [f"{i + 1:03d}.Drawn_bird_class_{i + 1}" for i in range(CUB_CLASSES)]
        figures.append(confused_class_pairs(predictions, labels, names))
    return figures


def plot_seconds(task_name: str, history: list[dict]) -> float:
    """Seconds to build and render the task's figure set to PNG bytes."""
    started = time.perf_counter()
    for figure in figure_set(task_name, history):
        png_bytes(figure)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="figure sets drawn per task (the median counts)")
    parser.add_argument("--data-root", type=Path, default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    torch.set_num_threads(1)
    first = plot_seconds("multiview", [{"epoch": 1, "probe/view_a/dim_std": 0.1}])  # fonts, caches
    print(f"first figure set in a process (font cache, imports): {first:.2f} s, paid once per trial")
    print(f"{'task':16} {'epoch s':>8} {'figures':>8} {'plots s':>8} {'plots/epoch':>12}")
    for name in args.tasks:
        epoch, history = run_epochs(name, args.epochs, args.data_root)
        seconds = float(np.median([plot_seconds(name, history) for _ in range(args.repeats)]))
        print(f"{name:16} {epoch:8.3f} {len(figure_set(name, history)):8d} {seconds:8.3f} {seconds / epoch:12.2f}")


if __name__ == "__main__":
    main()
