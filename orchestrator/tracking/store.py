"""Reaching the tracking store: the task's experiment, and calls that never stop a sweep.

A failing tracking store never stops the sweep: the calls that failed are counted and reported.
"""

from __future__ import annotations

import re
import time
from typing import Any, Callable

from mlflow.tracking import MlflowClient

from orchestrator.tracking.sqlite_store import create_whole, holds_no_runs, sqlite_path
from orchestrator.user_errors import TrackingUnavailable

RETRY_AFTER_SECONDS = 30.0


def open_client(tracking_uri: str) -> MlflowClient:
    """A client of the store at `tracking_uri`, a missing sqlite store created whole first;
    raises TrackingUnavailable (one line) when the store cannot be opened."""
    path = sqlite_path(tracking_uri)
    try:
        if path is not None:
            create_whole(path)
        return MlflowClient(tracking_uri=tracking_uri)
    except Exception as error:  # noqa: BLE001 - any store failure means the same to the user
        if path is not None and path.is_file() and holds_no_runs(path):
            advice = (f"it holds no runs (MLflow was likely cut off while creating it): "
                      f"delete {path} and run again")
        else:
            advice = "check --tracking-uri or MLFLOW_TRACKING_URI"
        raise TrackingUnavailable(
            f"cannot open the MLflow tracking store {tracking_uri!r} ({cause(error)}); {advice}"
        ) from None


def open_experiment(client: MlflowClient, task_name: str) -> str:
    """Get or create the task's experiment; raises TrackingUnavailable when the store is down."""
    try:
        experiment = client.get_experiment_by_name(task_name)
        if experiment is not None:
            return experiment.experiment_id
        experiment_id = client.create_experiment(task_name)
        # MLflow 3's UI lands on a GenAI overview unless told this is model training.
        client.set_experiment_tag(experiment_id, "mlflow.experimentKind", "custom_model_development")
        return experiment_id
    except Exception as error:  # noqa: BLE001 - any store failure means the same to the user
        raise unreachable(client.tracking_uri, error) from None


def unreachable(tracking_uri: str, error: Exception) -> TrackingUnavailable:
    """The one line for a store that could not be read or written at start."""
    return TrackingUnavailable(f"cannot reach the MLflow tracking store {tracking_uri!r} ({cause(error)}); "
                               "check --tracking-uri or MLFLOW_TRACKING_URI")


def cause(error: Exception) -> str:
    """The informative bit of a store error: the OS error if there is one, else its first line."""
    found = re.search(r"\[Errno -?\d+\] [^\"')(]+", str(error))
    if found:
        return found.group(0).strip()
    first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


class GuardedCalls:
    """Runs tracking calls so that a failure is recorded, never raised.

    After a failure the store is left alone for RETRY_AFTER_SECONDS (each call to a dead server
    costs seconds of retries, paid by the whole sweep); skipped calls are recorded too.
    """

    def __init__(self) -> None:
        self.failed: list[str] = []
        self.unreachable_until = 0.0

    def __call__(self, what: str, call: Callable[[], Any]) -> None:
        if time.monotonic() < self.unreachable_until:
            self.failed.append(f"skipped ({what}): the tracking store was unreachable")
            return
        try:
            call()
        except Exception as error:  # noqa: BLE001 - tracking must never stop the sweep
            self.failed.append(f"could not {what}: {cause(error)}")
            self.unreachable_until = time.monotonic() + RETRY_AFTER_SECONDS


def now_ms() -> int:
    return int(time.time() * 1000)
