"""What a trial costs beyond the training a user asked for: one config, three ways, side by side.

For each task, one config (drawn once from its default space, seed --seed) trains for --epochs
epochs on its demo data, one CPU thread, three ways in one run:
  bare        a plain loop in this process: build, then per epoch train + evaluate
  ray tune    the same loop as a plain Ray Tune function trainable, `tune.report(metrics)` per
              epoch (no checkpoint, no callbacks): what a user would write by hand
  orchestrate a real 1-trial `orchestrate sweep` (orchestrator.commands.run_sweeps: the trial
              loop, health probes and guards, a checkpoint per epoch, figures, MLflow on sqlite)
Each is timed inside the trial over the epochs after the first, from the first epoch's report
to the last one's (bare: from the end of the first epoch to the end of the last), per epoch,
so the Ray start, the worker's start and the build are not in it (bench/reuse_actors.py
measures the worker's start). A round runs the three arms one after another, each round in
another order; the ratio to bare is taken within each round and the median of --repeats rounds
is printed with its range, beside the load average (1 min) when the task's rounds began and
ended: on a shared machine the range says what the median is worth.

--breakdown also prints, per arm, an epoch after the first: its seconds (report to report),
those of train + evaluate (orchestrate: + probe, its `time/epoch_seconds`), the rest of the
epoch (the report round trip when the loop waits for it, the guards, the checkpoint), and how
long `tune.report` took (orchestrate: on its report thread, beside the next epoch). --parts
prints what an epoch of the generic loop spends beyond training (evaluate, probe, checkpoint)
as ratios of the training time.

    python -m bench.trial_overhead [--tasks retrieval anomaly ...] [--epochs 6] [--repeats 3]
                                   [--breakdown] [--parts]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import math
import statistics
import tempfile
import threading
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

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

TIMES_FILE = "bench_times.json"  # written into the trial's directory by the timed trainables
ARMS = ("orchestrate", "bare", "tune")


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
def bare_epochs(task_name: str, config: dict[str, Any], data_dir: str, epochs: int
                ) -> Iterator[dict[str, float]]:
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


def timed_epochs(epochs: Iterator[dict[str, float]]) -> Iterator[tuple[dict[str, float], float]]:
    """Each epoch's metrics with the seconds the epoch itself took (the generator's work)."""
    started = time.perf_counter()
    for metrics in epochs:
        yield metrics, time.perf_counter() - started
        started = time.perf_counter()


@dataclass
class ArmTimes:
    """One arm's clock over one trial: when each epoch's report began (bare: when the epoch
    ended), each epoch's train + evaluate seconds, and how long each report call took."""

    laps: list[float] = field(default_factory=list)
    epoch_seconds: list[float] = field(default_factory=list)
    report_seconds: list[float] = field(default_factory=list)

    @property
    def epochs(self) -> int:
        return len(self.laps)

    @property
    def seconds_per_epoch(self) -> float:
        """From the first lap to the last, per epoch: an epoch after the first, all of it.

        Per epoch, because a guard may end the orchestrate arm's trial before --epochs (the
        plateau guard, on a long budget)."""
        return (self.laps[-1] - self.laps[0]) / (self.epochs - 1)

    def per_epoch(self) -> dict[str, float]:
        """Means over the epochs after the first: epoch, train + evaluate, the rest, report."""
        epochs = self.epochs - 1
        training = sum(self.epoch_seconds[1:self.epochs]) / epochs
        reports = self.report_seconds[:epochs]
        return {"epoch": self.seconds_per_epoch, "train_evaluate": training,
                "rest": self.seconds_per_epoch - training,
                "report": statistics.fmean(reports) if reports else math.nan}


def bare_times(task_name: str, config: dict[str, Any], data_dir: str, epochs: int) -> ArmTimes:
    """The bare loop in this process, one torch thread (what a trial of 1 CPU gets: Ray sets
    OMP_NUM_THREADS=1)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    times = ArmTimes()
    try:
        for _, seconds in timed_epochs(bare_epochs(task_name, config, data_dir, epochs)):
            times.laps.append(time.perf_counter())
            times.epoch_seconds.append(seconds)
    finally:
        torch.set_num_threads(threads)
    return times


class _Stopwatch:
    """Times a trial's epochs after its first: from its first report to its last, written to
    the trial's directory at every report (ArmTimes as JSON).

    The first epoch (the build, cold imports, a first drawing's font loading) differs between
    a fresh process and this one, so every arm is timed from the end of epoch 1. Tune stops a
    trial that reached its budget on its last report, before the trainable returns, so the
    clock stops when a report is made: every earlier report's round trip is in (when the trial
    waits for it before its next epoch), the last one's in no arm.
    """

    def __init__(self):
        from ray import tune

        # The trial's directory in the sweep's storage (a local path here), not the worker's
        # working directory, which Ray keeps elsewhere.
        self.path = Path(tune.get_context().get_storage().trial_fs_path, TIMES_FILE)
        self.times = ArmTimes()
        self._lock = threading.Lock()  # the orchestrate arm reports from its report thread

    def report(self, epoch_seconds: float, send: Any) -> None:
        """Lap, then `send()` the report, timing it."""
        with self._lock:
            started = time.perf_counter()
            self.times.laps.append(started)
            self.times.epoch_seconds.append(epoch_seconds)
            self._write()
        try:
            send()
        finally:
            with self._lock:
                self.times.report_seconds.append(time.perf_counter() - started)
                self._write()

    def _write(self) -> None:
        self.path.write_text(json.dumps(self.times.__dict__))


def timed_plain_trainable(config: dict[str, Any]) -> None:
    """The bare loop as a plain Ray Tune trainable."""
    from ray import tune

    watch = _Stopwatch()
    epochs = bare_epochs(config["task"], config["config"], config["data_dir"], config["epochs"])
    for metrics, seconds in timed_epochs(epochs):
        watch.report(seconds, lambda: tune.report({f"val/{key}": value
                                                   for key, value in metrics.items()}))


def timed_run_trial(config: dict[str, Any], plan: Any) -> None:
    """orchestrator.trainable.run_trial's training, timed (a fresh trial: no checkpoint)."""
    import ray
    from ray import tune

    from orchestrator.trainable import _report_to_tune, train_trial
    from orchestrator.trial_progress import EPOCH_SECONDS

    watch = _Stopwatch()

    def report(result: dict[str, Any], checkpoint_dir: Path) -> None:
        watch.report(result[EPOCH_SECONDS], lambda: _report_to_tune(result, checkpoint_dir))

    train_trial(config, plan, tune.get_checkpoint(), report,
                node_id=ray.get_runtime_context().get_node_id(), gpus_assigned=len(ray.get_gpu_ids()))


def _times_of(storage: Path) -> ArmTimes:
    found = list(storage.rglob(TIMES_FILE))
    if len(found) != 1:
        raise RuntimeError(f"expected one trial's {TIMES_FILE} under {storage}, found {len(found)}")
    return ArmTimes(**json.loads(found[0].read_text()))


def plain_tune_times(task_name: str, config: dict[str, Any], data_dir: str, epochs: int,
                     storage: Path) -> ArmTimes:
    from ray import tune

    start_ray()
    tuner = tune.Tuner(
        tune.with_resources(timed_plain_trainable, {"cpu": 1}),
        param_space={"task": task_name, "config": config, "data_dir": data_dir, "epochs": epochs},
        run_config=tune.RunConfig(storage_path=str(storage), name="plain", verbose=0),
    )
    tuner.fit()
    ray_shutdown()
    return _times_of(storage / "plain")


def orchestrate_times(task_name: str, space: Path, data_dir: str, storage: Path) -> ArmTimes:
    """A real `orchestrate sweep --trials 1` of the fixed config, its trial timed."""
    import ray
    from rich.console import Console

    import orchestrator.sweep
    from orchestrator.commands import run_sweeps
    from orchestrator.sweep_input import SweepOptions, prepare_all

    ray.shutdown()  # run_sweeps starts its own local Ray, as the command does
    options = SweepOptions(name="overhead", trials=1, storage=str(storage), seed=0)
    real = orchestrator.sweep.run_trial
    orchestrator.sweep.run_trial = timed_run_trial  # what sweep.run hands to Tune
    try:
        run_sweeps(prepare_all([task_name], space, data_dir, options), options,
                   tracking_uri=f"sqlite:///{storage / 'mlflow.db'}", address=None,
                   console=Console(file=io.StringIO()))
    finally:
        orchestrator.sweep.run_trial = real
        ray_shutdown()
    return _times_of(storage / "overhead")


def ray_shutdown() -> None:
    import ray

    ray.shutdown()


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


def load() -> float:
    return os.getloadavg()[0]


def run_round(index: int, name: str, config: dict[str, Any], space: Path, data_dir: str,
              epochs: int, scratch: Path) -> dict[str, ArmTimes]:
    """The three arms once, in an order that turns with the round (no arm always runs first)."""
    storage = scratch / f"round-{index}"
    order = ARMS[index % len(ARMS):] + ARMS[:index % len(ARMS)]
    times: dict[str, ArmTimes] = {}
    with contextlib.redirect_stderr(io.StringIO()):
        for arm in order:
            if arm == "orchestrate":
                times[arm] = orchestrate_times(name, space, data_dir, storage / "orchestrate")
            elif arm == "bare":
                times[arm] = bare_times(name, config, data_dir, epochs)
            else:
                times[arm] = plain_tune_times(name, config, data_dir, epochs, storage / "tune")
    return times


def ratio_text(ratios: list[float]) -> str:
    """`1.04 [0.98-1.10]`: the median of the rounds' ratios and their range."""
    return f"{statistics.median(ratios):.2f} [{min(ratios):.2f}-{max(ratios):.2f}]"


def print_breakdown(name: str, rounds: list[dict[str, ArmTimes]]) -> None:
    labels = {"bare": "bare", "tune": "ray tune", "orchestrate": "orchestrate"}
    for arm in ("bare", "tune", "orchestrate"):
        parts = [times[arm].per_epoch() for times in rounds]
        median = {key: statistics.median(part[key] for part in parts) for key in parts[0]}
        report = "-" if math.isnan(median["report"]) else f"{median['report'] * 1000:.1f}"
        print(f"{name:16} {labels[arm]:12} {median['epoch']:8.3f} {median['train_evaluate']:15.3f} "
              f"{median['rest'] * 1000:8.1f} {report:>15}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", nargs="*", default=builtin_task_names())
    parser.add_argument("--epochs", type=int, default=6)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0, help="which config the space's draw gives")
    parser.add_argument("--breakdown", action="store_true",
                        help="also print where an epoch's seconds go in each arm")
    parser.add_argument("--parts", action="store_true", help="also time an epoch's parts")
    parser.add_argument("--data-root", type=Path,
                        default=Path(tempfile.gettempdir()) / "orchestrate-bench")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    logging.getLogger("ray").setLevel(logging.ERROR)

    print("seconds per epoch after the first; ratio to bare: median of the rounds [range]")
    print(f"{'task':16} {'epochs':>6} {'bare s':>8} {'ray tune s':>11} {'ratio [range]':>17} "
          f"{'orchestrate s':>14} {'ratio [range]':>17} {'load':>9}", flush=True)
    all_rounds: dict[str, list[dict[str, ArmTimes]]] = {}
    for name in args.tasks:
        task = load_task(task_reference(name))
        data_dir = str(demo_data_dir(task, args.data_root))
        config = drawn_config(name, args.seed)
        load_before = load()
        with tempfile.TemporaryDirectory(prefix="orchestrate-overhead-") as scratch:
            space = space_file(name, config, args.epochs, Path(scratch))
            rounds = [run_round(index, name, config, space, data_dir, args.epochs, Path(scratch))
                      for index in range(args.repeats)]
        all_rounds[name] = rounds
        seconds = {arm: statistics.median(times[arm].seconds_per_epoch for times in rounds)
                   for arm in ARMS}
        ratios = {arm: [times[arm].seconds_per_epoch / times["bare"].seconds_per_epoch
                        for times in rounds] for arm in ("tune", "orchestrate")}
        print(f"{name:16} {args.epochs:6d} {seconds['bare']:8.3f} {seconds['tune']:11.3f} "
              f"{ratio_text(ratios['tune']):>17} {seconds['orchestrate']:14.3f} "
              f"{ratio_text(ratios['orchestrate']):>17} {load_before:4.1f}-{load():<4.1f}", flush=True)
        ended_early = sorted({times["orchestrate"].epochs for times in rounds} - {args.epochs})
        if ended_early:
            print(f"{'':16} (a guard ended the orchestrate trial after epoch "
                  f"{', '.join(map(str, ended_early))} in some rounds: compared per epoch)")
    if args.breakdown:
        print(f"\nper epoch after the first (median of rounds):\n{'task':16} {'arm':12} "
              f"{'epoch s':>8} {'train+eval s':>15} {'rest ms':>8} {'tune.report ms':>15}")
        for name, rounds in all_rounds.items():
            print_breakdown(name, rounds)
    if args.parts:
        print_parts(args.tasks, args.epochs, args.data_root)


if __name__ == "__main__":
    main()
