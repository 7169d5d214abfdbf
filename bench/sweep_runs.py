"""Runs trials of a task through the real trial loop on a local Ray, for the benchmarks here.

The same pieces `orchestrate sweep` uses (the search-space spec and its Optuna space, Ray Tune,
`orchestrator.trainable.run_trial`, the health-guard stopper), with the two choices a measurement
needs instead of a sweep's: a sampler of the caller's choosing (random, so that trials are an
unbiased draw from the space) and no pruning (FIFO: every trial runs its full budget, so that
trials compare at the same number of epochs). Nothing is written to MLflow.
"""

from __future__ import annotations

import logging
import math
import os
import statistics
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orchestrator.registry import default_space_path, load_task, task_reference
from orchestrator.spaces import OptunaSpace, SearchSpaceSpec, check_against_task, load_spec
from orchestrator.trainable import TrialPlan, run_trial


@dataclass
class TrialRecord:
    """One finished trial: its config as given, every config value it ran with (defaults
    included), the sampled part, its metric per epoch, how it ended."""

    config: dict[str, Any]
    values: dict[str, Any]
    sampled: dict[str, Any]
    history: list[float] = field(default_factory=list)
    guard: str | None = None
    error: str | None = None

    @property
    def best(self) -> float:
        """The best target metric over the trial's epochs (what a sweep ranks trials by)."""
        finite = [value for value in self.history if math.isfinite(value)]
        return max(finite) if finite else float("nan")


def start_ray() -> None:
    """A fresh local Ray, quiet, with this repository importable by the workers."""
    import optuna
    import ray

    repo = str(Path(__file__).resolve().parent.parent)
    os.environ["PYTHONPATH"] = os.pathsep.join([repo, *filter(None, [os.environ.get("PYTHONPATH")])])
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    if not ray.is_initialized():
        ray.init(address="local", include_dashboard=False, log_to_driver=False,
                 logging_level=logging.WARNING)


def load_space(task_name: str, space_path: Path | None = None) -> tuple[Any, SearchSpaceSpec]:
    """The task and its validated search space (the default one unless space_path is given)."""
    task = load_task(task_reference(task_name))
    path = space_path or default_space_path(task)
    spec = load_spec(path)
    check_against_task(spec, task.config_model, path)
    return task, spec


def demo_data_dir(task: Any, data_root: Path) -> Path:
    """`<data_root>/<task>`, with the task's demo data written there on first use."""
    data_dir = Path(data_root) / task.name
    if not data_dir.exists():
        print(f"[{task.name}] writing the demo dataset to {data_dir}", flush=True)
        task.make_demo_data(data_dir, seed=0)
    return data_dir.resolve()


def _stopped_by_health_guard(trial_id: str, result: dict[str, Any]) -> bool:
    return bool(result.get("health/guard"))


def _run_listed_config(wrapped: dict[str, Any], plan: TrialPlan) -> None:
    run_trial(wrapped["config"], plan)


def _records(grid: Any, task: Any, spec: SearchSpaceSpec, listed: bool) -> list[TrialRecord]:
    records = []
    for result in grid:
        config = dict(result.config["config"] if listed else result.config)
        values = task.config_model.model_validate(config).model_dump()
        metric = spec.metric
        frame = result.metrics_dataframe
        history = [] if frame is None or metric not in frame else [float(v) for v in frame[metric]]
        guard = None
        if frame is not None and "health/guard" in frame:
            guards = [g for g in frame["health/guard"] if isinstance(g, str) and g]
            guard = guards[-1] if guards else None
        sampled = {name: config[name] for name in spec.parameters if name in config}
        records.append(TrialRecord(config, values, sampled, history, guard,
                                   None if result.error is None else str(result.error).splitlines()[-1]))
    return records


def run_trials(
    task_name: str,
    data_root: Path,
    trials: int | None = None,
    sampler: Any = None,
    configs: list[dict[str, Any]] | None = None,
    max_epochs: int | None = None,
    space_path: Path | None = None,
    cpus_per_trial: float = 1.0,
) -> tuple[SearchSpaceSpec, list[TrialRecord]]:
    """Run `trials` configs drawn by `sampler` from the task's space, or the listed `configs`
    (full configs, e.g. a drawn config with its unfreezing changed), each for the whole budget
    (`max_epochs`, default the space's) without pruning. Returns the spec and one record each."""
    from ray import tune
    from ray.tune.schedulers import FIFOScheduler
    from ray.tune.search.optuna import OptunaSearch

    start_ray()
    task, spec = load_space(task_name, space_path)
    data_dir = demo_data_dir(task, data_root)
    plan = TrialPlan(
        task_reference=task_reference(task_name), data_dir=str(data_dir),
        max_epochs=max_epochs or spec.budget.max_epochs, metric=spec.metric, mode=spec.mode,
        health=spec.health,
    )
    listed = configs is not None
    if listed:
        trainable = tune.with_parameters(_run_listed_config, plan=plan)
        tune_config = tune.TuneConfig(num_samples=1, scheduler=FIFOScheduler())
        param_space = {"config": tune.grid_search(configs)}
    else:
        trainable = tune.with_parameters(run_trial, plan=plan)
        searcher = OptunaSearch(space=OptunaSpace(spec), metric=spec.metric, mode=spec.mode,
                                sampler=sampler)
        tune_config = tune.TuneConfig(metric=spec.metric, mode=spec.mode, num_samples=trials,
                                      search_alg=searcher, scheduler=FIFOScheduler())
        param_space = None
    with tempfile.TemporaryDirectory(prefix="orchestrate-bench-") as storage:
        tuner = tune.Tuner(
            tune.with_resources(trainable, {"cpu": cpus_per_trial}),
            param_space=param_space,
            tune_config=tune_config,
            run_config=tune.RunConfig(
                name=task.name, storage_path=storage, stop=_stopped_by_health_guard, verbose=0,
                checkpoint_config=tune.CheckpointConfig(num_to_keep=1),
            ),
        )
        grid = tuner.fit()
        return spec, _records(grid, task, spec, listed)


def median(values: list[float]) -> float:
    finite = [value for value in values if math.isfinite(value)]
    return statistics.median(finite) if finite else float("nan")
