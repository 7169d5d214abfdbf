"""A sweep's input, checked before Ray starts: its flags, and per task its task, search space,
storage and data (`prepare_all`).

Light on purpose (no Ray, MLflow or torch of its own): the CLI checks a sweep's input with it
before it imports what runs the sweep, so a user's mistake is answered at once.
"""

from __future__ import annotations

import datetime
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from orchestrator.data_access import LocationError, cached_copy, is_uri, join_location, open_uri
from orchestrator.data_check import inspect_dataset
from orchestrator.defaults import DEFAULT_STORAGE
from orchestrator.registry import default_space_path, load_task, task_reference
from orchestrator.spaces import SearchSpaceSpec, check_against_task, load_spec
from orchestrator.user_errors import UsageError
from tasks.base import DataReport, Task

FIGURE_TRIALS = 3  # best trials drawn per task by default: the winner and the two behind it


@dataclass(frozen=True)
class SweepOptions:
    """The `orchestrate sweep` flags that apply to every task of the sweep."""

    name: str
    trials: int = 8
    max_epochs: int | None = None
    storage: str = DEFAULT_STORAGE
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    # Ray custom resources every trial also reserves, e.g. (("A100", 1.0),): --resource-per-trial
    resources_per_trial: tuple[tuple[str, float], ...] = ()
    concurrency: int | None = None
    seed: int = 0
    resume: bool = False
    max_failures: int = 2
    allow_data_leak: bool = False
    debug: bool = False  # Ray Tune's own error logs (tracebacks) reach the terminal
    one_at_a_time: bool = False  # several tasks: sweep them one after another, not at once
    resume_command: str = ""  # the command line that continues this sweep [a minimal one]
    figures_of_best: int = FIGURE_TRIALS  # best trials per task drawn after the sweep (0: none)

    def resume_hint(self) -> str:
        """The command that continues this sweep after an interruption."""
        return self.resume_command or f"orchestrate sweep --name {self.name} --resume"


@dataclass(frozen=True)
class PreparedSweep:
    """One task's sweep, validated and ready to hand to Ray."""

    task: Task
    task_reference: str
    spec: SearchSpaceSpec
    space_path: Path
    data_dir: Path  # where the driver reads the data (a URI's local copy)
    make_demo_data: bool
    max_epochs: int
    data_report: DataReport | None  # None for demo data not written yet
    data_location: str  # what the trials read: a path every node has, or a URI (data_access)
    default_data: bool  # no --data-dir given: ./data/<task>, demo data written on first use
    preflight: Any = None  # the preflight's PreflightResult (orchestrator/preflight.py), once run

    def experiment_dir(self, options: SweepOptions) -> str:
        """`<storage>/<sweep name>/<task>`: where Tune keeps this task's experiment."""
        return join_location(sweep_storage(options), self.task.name)


def default_sweep_name() -> str:
    return "sweep-" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")


def storage_uri(storage: str) -> str:
    """An object-store URI as given (UsageError if malformed); a local path made absolute
    (trials run in other directories)."""
    if not is_uri(storage):
        return str(Path(storage).expanduser().resolve())
    try:
        open_uri(storage, "--storage")
    except LocationError as error:
        raise UsageError(str(error)) from None
    return storage


def sweep_storage(options: SweepOptions) -> str:
    """`<storage>/<sweep name>`, the name placed before a URI's query string."""
    return join_location(storage_uri(options.storage), options.name)


def prepare(
    task_name: str, space: Path | None, data_dir: str | None, options: SweepOptions
) -> PreparedSweep:
    """Resolve the task, validate its search space, storage and data; nothing is written here
    (but a URI dataset is fetched into this node's cache, data_access.cached_copy)."""
    sweep_storage(options)  # a malformed storage URI is one line before anything starts
    reference = task_reference(task_name)
    task = load_task(reference)
    space_path = space or default_space_path(task)
    spec = load_spec(space_path)
    check_against_task(spec, task.config_model, space_path)
    if spec.task is not None and spec.task != task.name:
        raise UsageError(f"{space_path}: is the search space of task {spec.task!r}, not {task.name!r}")
    # A --max-epochs under the space's grace period (a quick 1-epoch check) leaves ASHA nothing
    # to prune: the grace period shrinks to the budget (see sweep._scheduler).
    max_epochs = options.max_epochs or spec.budget.max_epochs

    make_demo = False
    location, default_data = data_dir, data_dir is None
    if data_dir is None:
        data_dir = Path("data") / task.name
        make_demo = not data_dir.exists()
    elif is_uri(data_dir):
        try:
            data_dir = cached_copy(data_dir)
        except LocationError as error:
            raise UsageError(str(error)) from None
    else:
        data_dir = Path(data_dir)
        if not data_dir.is_dir():
            raise UsageError(f"--data-dir {data_dir}: no such directory; give the dataset's directory")
        if not any(data_dir.iterdir()):
            raise UsageError(
                f"--data-dir {data_dir}: the directory is empty; put the dataset there or write a "
                f"demo one with: orchestrate data --task {task.name} --out {data_dir}"
            )
    report = None
    if not make_demo:
        report = inspect_dataset(task, data_dir)
        report.raise_if_unusable(allow_leaks=options.allow_data_leak)
    if default_data or not is_uri(location):
        location = str(data_dir.resolve())
    return PreparedSweep(
        task, reference, spec, space_path, data_dir.resolve(), make_demo, max_epochs, report,
        data_location=location, default_data=default_data)


# Resources with flags of their own; --resource-per-trial names the others.
RESOURCE_FLAGS = {"CPU": "--cpus-per-trial", "GPU": "--gpus-per-trial", "memory": None,
                  "object_store_memory": None}


def parse_resource_per_trial(text: str) -> tuple[str, float]:
    """`NAME=AMOUNT` (a Ray custom resource, e.g. `A100=1` or `accelerator_type:A100=0.5`) ->
    (NAME, AMOUNT); UsageError for anything else."""
    name, equals, amount_text = text.rpartition("=")
    try:
        amount = float(amount_text)
    except ValueError:
        amount = math.nan
    if not equals or not name.strip() or not math.isfinite(amount) or amount <= 0:
        raise UsageError(
            f"--resource-per-trial {text!r}: expected NAME=AMOUNT with a positive AMOUNT, "
            "e.g. --resource-per-trial A100=1 (a custom resource the cluster's nodes declare)")
    name = name.strip()
    if name in RESOURCE_FLAGS or name.lower() in ("cpu", "gpu"):
        flag = RESOURCE_FLAGS.get(name) or RESOURCE_FLAGS.get(name.upper())
        instead = f"use {flag}" if flag else "Ray manages it"
        raise UsageError(f"--resource-per-trial {text!r}: {name} is not a custom resource; {instead}")
    return name, amount


def trial_resources(options: SweepOptions) -> dict[str, float]:
    """What Ray reserves for every trial: `cpu`, `gpu` and the custom resources."""
    return {"cpu": options.cpus_per_trial, "gpu": options.gpus_per_trial,
            **dict(options.resources_per_trial)}


def check_resources(options: SweepOptions, node_resources: list[dict[str, float]]) -> None:
    """Refuse per-trial resources that no node of the cluster can ever satisfy."""
    wanted_by_flag = [("CPU", options.cpus_per_trial, "--cpus-per-trial"),
                      ("GPU", options.gpus_per_trial, "--gpus-per-trial")]
    wanted_by_flag += [(name, amount, f"--resource-per-trial {name}={amount:g}")
                       for name, amount in options.resources_per_trial]
    for kind, wanted, flag in wanted_by_flag:
        largest = max((node.get(kind, 0.0) for node in node_resources), default=0.0)
        if wanted > largest:
            if kind in ("CPU", "GPU"):
                raise UsageError(
                    f"{flag} {wanted:g} is more than any node has (largest node: {largest:g} "
                    f"{kind}); lower {flag} or add larger nodes")
            if largest == 0:
                raise UsageError(
                    f"{flag}: no node of the cluster has the resource {kind!r}; name one a node "
                    "declares (ray start --resources) or leave the flag out")
            raise UsageError(
                f"{flag} is more than any node has (largest node: {largest:g} {kind}); "
                "lower the amount or add larger nodes")


def prepare_all(task_names: list[str], space: Path | None, data_dir: str | None,
                options: SweepOptions) -> list[PreparedSweep]:
    """Every named task prepared (`prepare`), or the first problem as a UsageError."""
    if len(task_names) > 1 and (space or data_dir):
        raise UsageError("--space and --data-dir apply to one task; pass a single --task with them")
    if not task_names:
        raise UsageError("no task to sweep: pass --task NAME")
    return [prepare(name, space, data_dir, options) for name in task_names]
