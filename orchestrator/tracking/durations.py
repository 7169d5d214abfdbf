"""A run's duration counts the time its sweep ran, not the time the sweep's driver was down.

MLflow shows a run's duration as end_time - start_time. A sweep stopped (Ctrl-C, a killed
driver) and resumed hours later would count those hours; so each resume adds the time since the
run was last active to its PAUSED_SECONDS tag, and the run is closed with end_time = now - that.
The time between a killed driver's last logged epoch and its death counts as paused.
"""

from __future__ import annotations

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from orchestrator.tracking.names import PAUSED_SECONDS, TRAIN_SECONDS
from orchestrator.tracking.store import now_ms


def last_active_ms(client: MlflowClient, run: Run) -> int:
    """When a live sweep last wrote the run: its end if it was closed, else its latest epoch
    (or its start, or the end it had before it was reopened, whichever is latest)."""
    if run.info.status != "RUNNING" and run.info.end_time:
        return run.info.end_time
    epochs = client.get_metric_history(run.info.run_id, TRAIN_SECONDS)
    return max([run.info.start_time or 0, run.info.end_time or 0] + [m.timestamp for m in epochs])


def paused_seconds(run: Run) -> float:
    """The paused time the run has recorded so far."""
    return float(run.data.tags.get(PAUSED_SECONDS, 0.0))


def paused_until_now(run: Run, last_active: int) -> float:
    """The run's paused time, counting from its last activity to now as paused too."""
    return paused_seconds(run) + max(0, now_ms() - last_active) / 1000.0


def end_time_ms(paused: float) -> int:
    """The end time that makes the run's duration its active time."""
    return now_ms() - int(paused * 1000)
