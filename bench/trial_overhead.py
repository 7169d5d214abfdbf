"""What a trial costs beyond the training a user asked for: one config, three ways, side by side.

For each task, one config (drawn once from its default space, seed --seed) trains for --epochs
epochs on its demo data, one CPU thread, three ways in one run:
  bare        a plain loop in this process: build, then per epoch train + evaluate
  ray tune    the same loop as a plain Ray Tune function trainable, `tune.report(metrics)` per
              epoch (no checkpoint, no callbacks): what a user would write by hand
  orchestrate a real 1-trial `orchestrate sweep` (orchestrator.commands.run_sweeps: the trial
              loop, health probes and guards, a checkpoint per epoch, figures, MLflow on sqlite)
Each is timed inside the trial over the epochs after the first, from the first epoch's report
to the last one's (bare: from the end of the first epoch to the end of the last), so the Ray
start, the worker's start and the build are not in it (bench/reuse_actors.py measures the
worker's start). Prints seconds and the ratio to bare, the median of --repeats rounds (the arms
alternate within a round). With --parts it also prints what an epoch of the generic loop spends
beyond training (evaluate, probe, checkpoint) as ratios of the training time.

    python -m bench.trial_overhead [--tasks retrieval anomaly ...] [--epochs 6] [--repeats 3]
                                   [--parts]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import logging
import os
import statistics
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import torch
import yaml
from optuna.samplers import RandomSampler

from bench.sweep_runs import demo_data_dir, load_space, start_ray
from orchestrator.registry import builtin_task_names, load_task, task_reference
from orchestrator.training import (
    MixedPrecision, build_optimizer, save_checkpoint, seed_everything, set_epoch, train_one_epoch,
)
from orchestrator.trial_progress import TrialProgress
from orchestrator.unfreezing import apply_unfreezing, trainable_block_count

WALL_FILE = "bench_wall_seconds.txt"  # written into the trial's directory by the timed trainables


# -- the config every arm trains --------------------------------------------------------------
def drawn_config(task_name: str, seed: int) -> dict[str, Any]:
    """One config from the task's default space (its fixed values and one random draw)."""
    import optuna

    from orchestrator.spaces import OptunaSpace

    _, spec = load_space(task_name)
    study = optuna.create_study(sampler=RandomSampler(seed=seed))
    trial = study.ask()
    fixed = OptunaSpace(spec)(trial)
    return {**fixed, **trial.params}


def space_file(task_name: str, config: dict[str, Any], epochs: int, directory: Path) -> Path:
    """A search space that fixes every value to `config`: the orchestrate arm runs that config."""
    _, spec = load_space(task_name)
    document = {
        "task": task_name, "metric": spec.metric, "mode": spec.mode,
        "budget": {"max_epochs": epochs, "grace_period": 1},
        "fixed": config, "parameters": {},
        "health": spec.health.model_dump(),
    }
    path = directory / f"{task_name}-fixed.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


# -- the loop the user asked for ----------------------------------------------------------------
def bare_epochs(task_name: str, config: dict[str, Any], data_dir: str, epochs: int):
    """Build, then per epoch train + evaluate; yields each epoch's validation metrics."""
    task = load_task(task_reference(task_name))
    hyperparameters = task.config_model.model_validate(config)
    seed_everything(hyperparameters.seed)
    setup = task.build(hyperparameters, Path(data_dir), torch.device("cpu"))
    optimizer, schedule = build_optimizer(setup, hyperparameters, epochs, len(setup.train_batches))
    precision = MixedPrecision(setup.device)
    for epoch in range(epochs):
        setup.model.train()
        set_epoch(setup.train_batches, epoch)
        apply_unfreezing(setup.unfreezable_blocks, trainable_block_count(hyperparameters, epoch))
        train_one_epoch(task, setup, optimizer, schedule, precision, hyperparameters.grad_clip_norm)
        setup.model.eval()
        yield task.evaluate(setup, "val")


def bare_seconds(task_name: str, config: dict[str, Any], data_dir: str, epochs: int) -> float:
    """Seconds from the end of the first epoch to the end of the last (see _Stopwatch)."""
    torch.set_num_threads(1)  # what a trial of 1 CPU gets (Ray sets OMP_NUM_THREADS=1)
    ends = [time.perf_counter() for _ in bare_epochs(task_name, config, data_dir, epochs)]
    return ends[-1] - ends[0]


class _Stopwatch:
    """Times a trial's epochs after its first: from its first report to its last, written to
    the trial's directory at every report.

    The first epoch (the build, cold imports, a first drawing's font loading) differs between
    a fresh process and this one, so every arm is timed from the end of epoch 1. Tune stops a
    trial that reached its budget on its last report, before the trainable returns, so the
    clock stops when a report is made: every earlier report's round trip is in (the trial
    waits for it before its next epoch), the last one's in no arm.
    """

    def __init__(self):
        from ray import tune

        # The trial's directory in the sweep's storage (a local path here), not the worker's
        # working directory, which Ray keeps elsewhere.
        self.path = Path(tune.get_context().get_storage().trial_fs_path, WALL_FILE)
        self.first: float | None = None

    def lap(self) -> None:
        now = time.perf_counter()
        self.first = now if self.first is None else self.first
        self.path.write_text(f"{now - self.first}\n")


def timed_plain_trainable(config: dict[str, Any]) -> None:
    """The bare loop as a plain Ray Tune trainable."""
    from ray import tune

    watch = _Stopwatch()
    for metrics in bare_epochs(config["task"], config["config"], config["data_dir"], config["epochs"]):
        watch.lap()
        tune.report({f"val/{key}": value for key, value in metrics.items()})


def timed_run_trial(config: dict[str, Any], plan: Any) -> None:
    """orchestrator.trainable.run_trial's training, timed (a fresh trial: no checkpoint)."""
    import ray
    from ray import tune

    from orchestrator.trainable import _report_to_tune, train_trial

    watch = _Stopwatch()

    def report(result: dict[str, Any], checkpoint_dir: Path) -> None:
        watch.lap()
        _report_to_tune(result, checkpoint_dir)

    train_trial(config, plan, tune.get_checkpoint(), report,
                node_id=ray.get_runtime_context().get_node_id(), gpus_assigned=len(ray.get_gpu_ids()))


def _wall_of(storage: Path) -> float:
    found = list(storage.rglob(WALL_FILE))
    if len(found) != 1:
        raise RuntimeError(f"expected one trial's {WALL_FILE} under {storage}, found {len(found)}")
    return float(found[0].read_text())


def plain_tune_seconds(task_name: str, config: dict[str, Any], data_dir: str, epochs: int,
                       storage: Path) -> float:
    from ray import tune

    start_ray()
    tuner = tune.Tuner(
        tune.with_resources(timed_plain_trainable, {"cpu": 1}),
        param_space={"task": task_name, "config": config, "data_dir": data_dir, "epochs": epochs},
        run_config=tune.RunConfig(storage_path=str(storage), name="plain", verbose=0),
    )
    tuner.fit()
    return _wall_of(storage / "plain")


def orchestrate_seconds(task_name: str, space: Path, data_dir: str, storage: Path) -> float:
    """A real `orchestrate sweep --trials 1` of the fixed config, its trial timed."""
    import ray
    from rich.console import Console

    import orchestrator.sweep
    from orchestrator.commands import run_sweeps
    from orchestrator.sweep import SweepOptions

    ray.shutdown()  # run_sweeps starts its own local Ray, as the command does
    options = SweepOptions(name="overhead", trials=1, storage=str(storage), seed=0)
    real = orchestrator.sweep.run_trial
    orchestrator.sweep.run_trial = timed_run_trial  # what sweep.run hands to Tune
    try:
        run_sweeps([task_name], space, data_dir, options,
                   tracking_uri=f"sqlite:///{storage / 'mlflow.db'}", address=None,
                   console=Console(file=io.StringIO()))
    finally:
        orchestrator.sweep.run_trial = real
        ray.shutdown()
    return _wall_of(storage / "overhead")


# -- where an epoch's time goes (--parts) ----------------------------------------------------
def epoch_parts(task_name: str, epochs: int, data_root: Path) -> dict[str, float]:
    """Seconds per epoch of train, evaluate, probe and checkpoint for the default config."""
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


def print_parts(tasks: list[str], epochs: int, data_root: Path) -> None:
    torch.set_num_threads(1)
    print(f"\n{'task':16} {'train s/epoch':>14} {'evaluate/train':>15} {'probe/train':>12} "
          f"{'checkpoint/train':>17}")
    for name in tasks:
        parts = epoch_parts(name, epochs, data_root)
        train = parts["train"]
        print(f"{name:16} {train:14.3f} {parts['evaluate'] / train:15.2f} "
              f"{parts['probe'] / train:12.2f} {parts['checkpoint'] / train:17.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="which config the space's draw gives")
    parser.add_argument("--parts", action="store_true", help="also time an epoch's parts")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    logging.getLogger("ray").setLevel(logging.ERROR)

    print(f"{'task':16} {'epochs':>6} {'bare s':>8} {'ray tune s':>11} {'ratio':>6} "
          f"{'orchestrate s':>14} {'ratio':>6}", flush=True)
    for name in args.tasks:
        task = load_task(task_reference(name))
        data_dir = str(demo_data_dir(task, args.data_root))
        config = drawn_config(name, args.seed)
        rounds: dict[str, list[float]] = {"bare": [], "tune": [], "orchestrate": []}
        with tempfile.TemporaryDirectory(prefix="orchestrate-overhead-") as scratch:
            space = space_file(name, config, args.epochs, Path(scratch))
            for index in range(args.repeats):
                storage = Path(scratch) / f"round-{index}"
                with contextlib.redirect_stderr(io.StringIO()):
                    rounds["orchestrate"].append(
                        orchestrate_seconds(name, space, data_dir, storage / "orchestrate"))
                    rounds["bare"].append(bare_seconds(name, config, data_dir, args.epochs))
                    rounds["tune"].append(
                        plain_tune_seconds(name, config, data_dir, args.epochs, storage / "tune"))
        bare, tune_s, ours = (statistics.median(rounds[arm]) for arm in ("bare", "tune", "orchestrate"))
        print(f"{name:16} {args.epochs:6d} {bare:8.2f} {tune_s:11.2f} {tune_s / bare:6.2f} "
              f"{ours:14.2f} {ours / bare:6.2f}", flush=True)
    if args.parts:
        print_parts(args.tasks, args.epochs, args.data_root)


if __name__ == "__main__":
    main()
