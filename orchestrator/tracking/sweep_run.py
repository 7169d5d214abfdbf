"""The sweep's own run: created once per sweep name (a resumed sweep reopens it), ended with its
trials' counts and its best trial, FINISHED, or KILLED and tagged `interrupted` after a Ctrl-C.

Its `trials/<status>` and `best/<metric>` metrics are logged at each end of the sweep, at step
n for its n-th end (0 first; an interrupted sweep resumed ends again), so no step has two values.
"""

from __future__ import annotations

from typing import Any, Callable

from mlflow.entities import Metric, Param, Run, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.outcomes import TrialOutcome
from orchestrator.tracking import durations
from orchestrator.run_presentation import DESCRIPTION_TAG
from orchestrator.tracking.presentation import sweep_run_tags
from orchestrator.tracking.names import (
    BEST_TRIAL, PAUSED_SECONDS, REASON, ROLE, STATUS, SWEEP, TASK, best_metric_key)
from orchestrator.tracking.store import now_ms

ENDS_COUNTED_BY = "trials/completed"  # logged at every end: its history length counts the ends


def find_sweep_run(client: MlflowClient, experiment_id: str, sweep_name: str) -> Run | None:
    """The run of the sweep called `sweep_name` in a task's experiment, if there is one."""
    existing = client.search_runs(
        [experiment_id],
        filter_string=f"tags.`{SWEEP}` = '{sweep_name}' and tags.`{ROLE}` = 'sweep'",
        max_results=1,
    )
    return existing[0] if existing else None


class SweepRun:
    def __init__(self, client: MlflowClient, experiment_id: str, sweep_name: str, task_name: str,
                 run_tags: dict[str, str], sweep_params: dict[str, Any]):
        self.client = client
        self.experiment_id = experiment_id
        self.sweep_name = sweep_name
        self.task_name = task_name
        self.run_tags = run_tags
        self.sweep_params = sweep_params
        self.run_id: str | None = None
        self.paused_seconds = 0.0

    def find(self) -> Run | None:
        return find_sweep_run(self.client, self.experiment_id, self.sweep_name)

    def create(self) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=self.sweep_name,
            tags={ROLE: "sweep", SWEEP: self.sweep_name, TASK: self.task_name, STATUS: "running",
                  **sweep_run_tags(), **self.run_tags},
        )
        self.run_id = run.info.run_id
        self.client.log_batch(
            self.run_id,
            params=[Param(key, str(value)[:6000]) for key, value in self.sweep_params.items()],
        )
        return self.run_id

    def reopen(self, run: Run, trial_runs: Callable[[], list[Run]]) -> str:
        """Run again a sweep run of an earlier driver; the time since it (or, for a killed
        driver, the latest of its trial runs) was last active counts as paused."""
        if run.info.status != "RUNNING" and run.info.end_time:
            last_active = run.info.end_time
        else:
            last_active = max([run.info.start_time or 0] + [
                durations.last_active_ms(self.client, trial) for trial in trial_runs()])
        self.run_id = run.info.run_id
        self.paused_seconds = durations.paused_until_now(run, last_active)
        self.client.update_run(self.run_id, status="RUNNING")
        self.client.log_batch(self.run_id, tags=[
            RunTag(STATUS, "running"), RunTag(PAUSED_SECONDS, f"{self.paused_seconds:.3f}")])
        if REASON in run.data.tags:  # why it stopped last time, no longer true
            self.client.delete_tag(self.run_id, REASON)
        return self.run_id

    def end(self, counts: dict[str, int], best: TrialOutcome | None, metric: str,
            interrupted: bool, resume_command: str, description: str | None = None) -> None:
        """Log the trials' counts and the best trial, set its description (markdown, see
        tracking/presentation.py), and end the run (KILLED if interrupted)."""
        step = len(self.client.get_metric_history(self.run_id, ENDS_COUNTED_BY))
        now = now_ms()
        metrics = [Metric(f"trials/{'interrupted' if status == 'running' else status}", count, now, step)
                   for status, count in counts.items()]
        tags = [RunTag(STATUS, "interrupted" if interrupted else "finished")]
        if interrupted:
            tags.append(RunTag(REASON, f"interrupted by Ctrl-C; `{resume_command}` continues it"))
        if best is not None:
            metrics.append(Metric(best_metric_key(metric), best.best_metric, now, step))
            tags.append(RunTag(BEST_TRIAL, best.trial_id))
        if description:
            tags.append(RunTag(DESCRIPTION_TAG, description[:5000]))
        self.client.log_batch(self.run_id, metrics=metrics, tags=tags)
        self.client.set_terminated(self.run_id, "KILLED" if interrupted else "FINISHED",
                                   end_time=durations.end_time_ms(self.paused_seconds))
