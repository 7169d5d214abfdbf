"""The preflight: one trial's build, training step, evaluation and probe, in process, before Ray.

A mistake that would fail every trial (a misspelt target metric, a task that raises) is found
here in seconds, as one line, before anything is written; and the user sees which run-health
guards can watch this task and which cannot, and why (a probe the task does not report).

The preflight samples one config from the search space (Optuna's RandomSampler, in memory),
asks the task to load at most PREFLIGHT_SAMPLES samples per split when its config has
`max_samples_per_split` (tasks that do not honour it load their whole data), builds it on the
CPU, runs one training step (forward and backward, no optimiser step), evaluates val and probes.
Demo data not written yet is written to a temporary directory first and moved into place when
the task's sweep starts, so a sweep that fails before (a preflight, Ray, the tracking store)
leaves nothing written.
"""

from __future__ import annotations

import atexit
import dataclasses
import gc
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from orchestrator.health import Coverage, guard_coverage
from orchestrator.spaces import OptunaSpace
from orchestrator.sweep_input import PreparedSweep
from orchestrator.user_errors import UsageError
from tasks.base import DataError

PREFLIGHT_SAMPLES = 64
SUBSET_FIELD = "max_samples_per_split"


class PreflightFailed(UsageError):
    """A task cannot run a single trial; the message is one line for a user."""


@dataclass
class PreflightResult:
    """What the preflight of one task found."""

    task_name: str
    seconds: float
    report: dict[str, Any]  # the keys one trial reports, with their preflight values
    coverage: list[Coverage]
    subset: bool  # whether the task was asked for a subset of its data
    demo_dir: Path | None = None  # fresh demo data, in a temporary directory until installed

    def guards_on(self) -> list[Coverage]:
        return [item for item in self.coverage if item.active]

    def guards_off(self) -> list[Coverage]:
        return [item for item in self.coverage if not item.active]

    def lines(self) -> list[str]:
        """What the terminal shows for this task's preflight."""
        prefix = f"[{self.task_name}]"
        data = (f"asked for at most {PREFLIGHT_SAMPLES} samples per split" if self.subset
                else "on its whole data")
        lines = [f"{prefix} preflight passed in {self.seconds:.1f} s (build {data}, one "
                 f"training step, evaluate, probe; {len(self.report)} keys reported)"]
        lines.append(f"{prefix} guards on: " + "; ".join(
            f"{item.guard} ({item.watches})" if item.watches else item.guard
            for item in self.guards_on()))
        off = self.guards_off()
        if off:
            lines.append(f"{prefix} guards off: " + "; ".join(
                f"{item.guard} ({', '.join(item.gaps)})" for item in off))
        gaps = [f"{item.guard}: {gap}" for item in self.guards_on() for gap in item.gaps]
        if gaps:
            lines.append(f"{prefix} blind spots: " + "; ".join(gaps))
        return lines

    def mlflow_params(self) -> dict[str, str]:
        """The guard coverage as params of the task's sweep run."""
        return {
            "guards_on": "; ".join(f"{item.guard} ({item.watches})" for item in self.guards_on()),
            "guards_off": "; ".join(f"{item.guard} ({', '.join(item.gaps)})"
                                    for item in self.guards_off()) or "none",
            "guard_blind_spots": "; ".join(f"{item.guard}: {gap}" for item in self.guards_on()
                                           for gap in item.gaps) or "none",
        }


def preflight_all(prepared: list[PreparedSweep], seed: int, console: Console) -> list[PreparedSweep]:
    """Preflight every task and print what each found; returns the sweeps with their results.

    Raises PreflightFailed or DataError (one line) on the first task that fails, after removing
    any temporary demo data: nothing is left written. Fresh demo data waits in a temporary
    directory until the task's sweep starts (`install_demo_data`); what no sweep installed is
    removed when the process exits.
    """
    results: list[PreflightResult] = []
    try:
        for one in prepared:
            results.append(run_preflight(one, seed))
    except BaseException:
        for result in results:
            _remove(result.demo_dir)
        raise
    for result in results:
        for line in result.lines():
            console.print(line, highlight=False, markup=False, soft_wrap=True)
        if result.demo_dir is not None:
            atexit.register(_remove, result.demo_dir)
    return [dataclasses.replace(one, preflight=result) for one, result in zip(prepared, results)]


def install_demo_data(prepared: PreparedSweep, seed: int) -> None:
    """Put the task's demo dataset at its data directory: the copy its preflight wrote, moved
    into place, or (without one) a freshly written one."""
    result = prepared.preflight
    if result is None or result.demo_dir is None:
        prepared.task.make_demo_data(prepared.data_dir, seed=seed)
        return
    prepared.data_dir.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(result.demo_dir / "data"), str(prepared.data_dir))
    _remove(result.demo_dir)
    result.demo_dir = None


def run_preflight(prepared: PreparedSweep, seed: int) -> PreflightResult:
    """Build, step, evaluate and probe one trial of the task in this process; see the module
    docstring. Raises PreflightFailed (one line) when the task cannot run a trial or the
    space names a metric or a plausible_max key the task does not report."""
    import torch

    from orchestrator.training import seed_everything

    task, spec = prepared.task, prepared.spec
    started = time.monotonic()
    demo_dir = None
    try:
        data_dir = prepared.data_dir
        if prepared.make_demo_data:
            demo_dir = Path(tempfile.mkdtemp(prefix=f"orchestrate-preflight-{task.name}-"))
            data_dir = demo_dir / "data"
            _stage(task.name, "make_demo_data", lambda: task.make_demo_data(data_dir, seed=seed))
        config, subset = _stage(task.name, "config", lambda: _preflight_config(prepared, seed))
        seed_everything(config.seed)
        setup = _stage(task.name, "build", lambda: task.build(config, data_dir, torch.device("cpu")))
        report = {"epoch": 1, "training_iteration": 1}
        report.update(_prefixed("train", _stage(task.name, "training_step", lambda: _one_step(task, setup))))
        setup.model.eval()
        report.update(_prefixed("val", _stage(task.name, "evaluate", lambda: task.evaluate(setup, "val"))))
        report.update(_prefixed("probe", _stage(task.name, "probe", lambda: task.probe(setup))))
        del setup
        gc.collect()
        _check_names(prepared, report)
        plausible = _task_plausible_max(task)
        coverage = [_within_budget(item, guard, prepared.max_epochs) for item, guard in zip(
            guard_coverage(report, metric=spec.metric, mode=spec.mode,
                           value_bounds=task.value_bounds, config=spec.health,
                           plausible_max=plausible),
            spec.health.all_guards())]
    except BaseException:
        _remove(demo_dir)
        raise
    return PreflightResult(task.name, time.monotonic() - started, report, coverage, subset, demo_dir)


def _within_budget(coverage: Coverage, guard, max_epochs: int) -> Coverage:
    """The guard's coverage, with a gap when its warm-up outlasts the sweep's epoch budget."""
    first = guard.earliest_verdict()
    if not coverage.active or first <= max_epochs:
        return coverage
    gap = (f"judges from report {first} on, after this sweep's {max_epochs}-epoch budget "
           f"(shorten its warm-up under health.{guard.name} or raise max_epochs)")
    return dataclasses.replace(coverage, gaps=(*coverage.gaps, gap))


def _stage(task_name: str, stage: str, call):
    """Run one step of the task's code; its error becomes one line naming the task and step."""
    try:
        return call()
    except (DataError, PreflightFailed):
        raise
    except Exception as error:  # noqa: BLE001 - any error of the task's code means the same
        first = str(error).strip().splitlines()[0] if str(error).strip() else ""
        raise PreflightFailed(
            f"task {task_name} failed its preflight in {stage}: {type(error).__name__}"
            + (f": {first}" if first else "")
            + " (every trial would fail the same way; --debug shows the traceback)"
        ) from error


def _preflight_config(prepared: PreparedSweep, seed: int):
    """One config of the space, sampled as a trial's would be, asking for a data subset when
    the task's config has the field for it. Returns (validated config, subset asked)."""
    import optuna

    task, spec = prepared.task, prepared.spec
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=seed))
    trial = study.ask()
    values = {**OptunaSpace(spec)(trial), **trial.params}
    subset = SUBSET_FIELD in task.config_model.model_fields and SUBSET_FIELD not in values
    if subset:
        values[SUBSET_FIELD] = PREFLIGHT_SAMPLES
    return task.config_model.model_validate(values), subset


def _one_step(task, setup) -> dict[str, float]:
    """The task's loss on its first training batch, back-propagated (no optimiser step)."""
    setup.model.train()
    batch = next(iter(setup.train_batches), None)
    if batch is None:
        raise ValueError("the training split produced no batch; lower batch_size or add data")
    losses = task.training_step(setup, batch)
    if "loss" not in losses:
        raise ValueError(f"training_step returned {sorted(losses)} without a 'loss' to minimise")
    losses["loss"].backward()
    setup.model.zero_grad(set_to_none=True)
    return {key: float(value.detach()) if hasattr(value, "detach") else float(value)
            for key, value in losses.items()}


def _prefixed(prefix: str, values: dict[str, Any]) -> dict[str, Any]:
    return {f"{prefix}/{key}": value for key, value in values.items()}


def _check_names(prepared: PreparedSweep, report: dict[str, Any]) -> None:
    """The space's metric and every plausible_max key must be keys the task reports."""
    task, spec, path = prepared.task, prepared.spec, prepared.space_path
    evaluated = sorted(key for key in report if key.startswith("val/"))
    if spec.metric not in report:
        raise PreflightFailed(
            f"{path}: metric {spec.metric!r} is not reported by task {task.name}; its evaluate "
            f"reports: {', '.join(evaluated)} (fix `metric:` in the space)")
    for key in spec.health.leakage.plausible_max:
        if key not in report:
            raise PreflightFailed(
                f"{path}: health.leakage.plausible_max names {key!r}, which task {task.name} does "
                f"not report; it reports: {', '.join(evaluated)}")
    for key in _task_plausible_max(task):
        if key not in report:
            raise PreflightFailed(
                f"task {task.name} declares plausible_max for {key!r}, which its evaluate does not "
                f"report (it reports: {', '.join(evaluated)}); fix the task's plausible_max")


def _task_plausible_max(task) -> dict[str, float]:
    """The task's optional plausible_max, checked: reported key -> a finite number."""
    declared = getattr(task, "plausible_max", None) or {}
    try:
        checked = {str(key): float(value) for key, value in dict(declared).items()}
    except (TypeError, ValueError):
        raise PreflightFailed(
            f"task {task.name}: plausible_max must map reported keys to numbers, "
            f"got {declared!r}") from None
    bad = [key for key, value in checked.items() if value != value or value in (float("inf"), float("-inf"))]
    if bad:
        raise PreflightFailed(f"task {task.name}: plausible_max of {bad[0]!r} is not a finite number")
    return checked


def _remove(directory: Path | None) -> None:
    if directory is not None:
        shutil.rmtree(directory, ignore_errors=True)
