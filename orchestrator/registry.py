"""Finds tasks: built-in ones by name, a user's own as `package.module:object`.

A built-in task is a module `tasks/<name>` together with `search_spaces/<name>.yaml`; adding
both is all it takes for `orchestrate sweep` to pick it up.
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from tasks.base import Task

REPO_ROOT = Path(__file__).resolve().parent.parent
SEARCH_SPACES = REPO_ROOT / "search_spaces"
REQUIRED = ("name", "metric", "mode", "config_model", "value_bounds", "make_demo_data",
            "check_data", "build", "training_step", "evaluate", "probe")


class TaskNotFound(LookupError):
    """The task name or reference cannot be resolved; the message is one line for a user."""


def builtin_task_names() -> list[str]:
    """Names of the tasks shipped in tasks/ that have a search space."""
    return sorted(
        path.stem for path in SEARCH_SPACES.glob("*.yaml")
        if (REPO_ROOT / "tasks" / path.stem).is_dir() or (REPO_ROOT / "tasks" / f"{path.stem}.py").is_file()
    )


def task_reference(name: str) -> str:
    """`retrieval` -> `tasks.retrieval:task`; a `module:object` reference is returned as is."""
    if ":" in name:
        return name
    if name in builtin_task_names():
        return f"tasks.{name}:task"
    raise TaskNotFound(
        f"unknown task {name!r}; built-in tasks: {', '.join(builtin_task_names())}, "
        "or name your own as package.module:object"
    )


def load_task(reference: str) -> Task:
    """Import `module:object` and check it provides the task interface (tasks/base.py)."""
    module_name, _, object_name = reference.partition(":")
    # A plug-in task in the directory the user runs from imports as it would with `python -m`.
    if os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ImportError as error:
        raise TaskNotFound(
            f"task {reference!r}: cannot import module {module_name!r} ({error}); "
            "check the name and that it is on PYTHONPATH"
        ) from None
    try:
        task = getattr(module, object_name)
    except AttributeError:
        raise TaskNotFound(f"task {reference!r}: module {module_name!r} has no {object_name!r}") from None
    missing = [attribute for attribute in REQUIRED if not hasattr(task, attribute)]
    if missing:
        raise TaskNotFound(
            f"task {reference!r} lacks the task interface: missing {', '.join(missing)} "
            "(see tasks/base.py)"
        )
    return task


def default_space_path(task: Task) -> Path:
    """search_spaces/<name>.yaml of this repo, else of the current directory (plug-in tasks)."""
    shipped = SEARCH_SPACES / f"{task.name}.yaml"
    return shipped if shipped.is_file() else Path("search_spaces") / f"{task.name}.yaml"
