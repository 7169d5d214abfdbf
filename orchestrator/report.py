"""`orchestrate report`: a task's trials as MLflow recorded them, one row per trial."""

from __future__ import annotations

from dataclasses import dataclass

from mlflow.tracking import MlflowClient
from rich.table import Table

from orchestrator.tracking import GUARD, PARENT, REASON, ROLE, STATUS, best_metric_key
from tasks.base import Task


@dataclass(frozen=True)
class TrialRow:
    sweep: str
    run_name: str
    status: str
    guard: str
    reason: str
    best: float | None
    params: dict[str, str]


def trial_rows(client: MlflowClient, task: Task) -> list[TrialRow]:
    """Every trial run of the task's experiment, oldest first; empty when there is none."""
    experiment = client.get_experiment_by_name(task.name)
    if experiment is None:
        return []
    sweeps = {
        run.info.run_id: run for run in client.search_runs(
            [experiment.experiment_id], f"tags.`{ROLE}` = 'sweep'", max_results=50000)
    }
    rows = []
    trials = client.search_runs([experiment.experiment_id], f"tags.`{ROLE}` = 'trial'",
                                max_results=50000, order_by=["attributes.start_time ASC"])
    for run in trials:
        sweep = sweeps.get(run.data.tags.get(PARENT, ""))
        metric = sweep.data.params.get("metric", task.metric) if sweep else task.metric
        rows.append(TrialRow(
            sweep=sweep.info.run_name if sweep else "?",
            run_name=run.info.run_name,
            status=run.data.tags.get(STATUS, "?"),
            guard=run.data.tags.get(GUARD, ""),
            reason=run.data.tags.get(REASON, ""),
            best=run.data.metrics.get(best_metric_key(metric)),
            params=dict(run.data.params),
        ))
    return rows


def report_table(task: Task, rows: list[TrialRow]) -> Table:
    table = Table(title=f"{task.name}: trials in MLflow", title_justify="left")
    for column in ("sweep", "trial run", "status", "guard", "best", "reason", "params"):
        table.add_column(column, overflow="fold")
    for row in rows:
        params = ", ".join(f"{key}={_short(value)}" for key, value in sorted(row.params.items()))
        table.add_row(row.sweep, row.run_name, row.status, row.guard,
                      "" if row.best is None else f"{row.best:.4f}", row.reason, params)
    return table


def _short(value: str) -> str:
    """MLflow keeps params as text; show floats with 4 significant digits."""
    try:
        return value if float(value).is_integer() else f"{float(value):.4g}"
    except ValueError:
        return value
