"""Each trial's MLflow run: created once, found again by its trial id (a retried or resumed trial
keeps its run), replaced when the trial re-runs epochs the run holds, closed when it ends."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml
from mlflow.entities import Param, Run, RunTag
from mlflow.tracking import MlflowClient

from orchestrator.tracking import durations
from orchestrator.tracking.presentation import first_name, first_tags
from orchestrator.tracking.names import (
    ATTEMPTS, BEST_EPOCH, CONFIG_ARTIFACT, MODEL_ARTIFACT_DIR, PARENT, PAUSED_SECONDS, REPLACES,
    RETRIES, ROLE, STATUS, SWEEP, TASK, TRAIN_SECONDS, TRIAL_ID)


@dataclass
class TrialRun:
    """What this process knows of a trial's run (the run itself holds all of it too)."""

    run_id: str
    epochs_logged: int = 0  # the run holds the metrics of epochs 1..epochs_logged
    best_epoch: int = 0  # its model/ artifact holds this epoch's weights (0: none yet)
    attempts: int = 0
    retries: int = 0
    paused_seconds: float = 0.0


class TrialRuns:
    """The trial runs of one sweep, nested under its sweep run."""

    def __init__(self, client: MlflowClient, experiment_id: str, sweep_name: str, task_name: str,
                 run_tags: dict[str, str], full_config: Callable[[dict[str, Any]], dict[str, Any]],
                 searched: Sequence[str] = ()):
        self.client = client
        self.searched = list(searched)  # the search space's parameters, in its order
        self.experiment_id = experiment_id
        self.sweep_name = sweep_name
        self.task_name = task_name
        self.run_tags = run_tags
        self.full_config = full_config
        self.parent_run_id: str | None = None
        self.runs: dict[str, TrialRun] = {}

    def of(self, trial) -> TrialRun:
        """The trial's run: known, found again (and reopened) or created."""
        if trial.trial_id not in self.runs:
            found = self.find(trial.trial_id)
            self.runs[trial.trial_id] = self._reopen(found) if found else self._create(trial)
        return self.runs[trial.trial_id]

    def find(self, trial_id: str) -> Run | None:
        """The trial's run in this sweep, if it has one. A replacement cut short (its driver
        died before it deleted the run it replaces) is finished here."""
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TRIAL_ID}` = '{trial_id}' and tags.`{PARENT}` = '{self.parent_run_id}'",
            max_results=100,
        )
        replaced = {run.data.tags[REPLACES] for run in found if REPLACES in run.data.tags}
        for run in found:
            if run.info.run_id in replaced:
                self.client.delete_run(run.info.run_id)
        current = [run for run in found if run.info.run_id not in replaced]
        return max(current, key=lambda run: run.info.start_time or 0) if current else None

    def of_sweep(self) -> list[Run]:
        """Every trial run of the sweep, the first started first (ties between trials then
        follow start order, as in an unbroken sweep)."""
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{PARENT}` = '{self.parent_run_id}' and tags.`{ROLE}` = 'trial'",
            max_results=50000, order_by=["attributes.start_time ASC"],
        )

    def replace(self, trial_id: str) -> TrialRun:
        """A fresh run in place of the trial's run, which holds epochs of an attempt that did
        not survive (MLflow cannot overwrite a metric's value at a step). Its tags, params and
        artifacts but the model move over; the caller logs the surviving history into it. The
        old run is deleted (MLflow keeps it, hidden from searches, until garbage collected)."""
        old = self.runs[trial_id]
        stale = self.client.get_run(old.run_id)
        tags = {key: value for key, value in stale.data.tags.items() if key != "mlflow.runName"}
        run = self.client.create_run(self.experiment_id, start_time=stale.info.start_time,
                                     run_name=stale.info.run_name, tags={**tags, REPLACES: old.run_id})
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, v) for k, v in stale.data.params.items()])
        with tempfile.TemporaryDirectory() as directory:
            for artifact in self.client.list_artifacts(old.run_id):
                if artifact.path == MODEL_ARTIFACT_DIR:
                    continue  # the weights come from the surviving checkpoint
                local = self.client.download_artifacts(old.run_id, artifact.path, directory)
                if artifact.is_dir:
                    self.client.log_artifacts(run_id, local, artifact.path)
                else:
                    self.client.log_artifact(run_id, local)
        self.client.delete_run(old.run_id)
        self.runs[trial_id] = TrialRun(run_id, attempts=old.attempts, retries=old.retries,
                                       paused_seconds=old.paused_seconds)
        return self.runs[trial_id]

    def close(self, run_id: str, tags: list[RunTag], mlflow_status: str, end_time: int) -> None:
        """Tag the run with how its trial ended and end it at `end_time` (ms, durations.py)."""
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, mlflow_status, end_time=end_time)

    def _reopen(self, run: Run) -> TrialRun:
        """A run of an earlier driver of this sweep, running again (a resumed sweep)."""
        paused = durations.paused_until_now(run, durations.last_active_ms(self.client, run))
        epochs = self.client.get_metric_history(run.info.run_id, TRAIN_SECONDS)
        self.client.update_run(run.info.run_id, status="RUNNING")
        self.client.log_batch(run.info.run_id, tags=[
            RunTag(STATUS, "running"), RunTag(PAUSED_SECONDS, f"{paused:.3f}")])
        tags = run.data.tags
        return TrialRun(
            run.info.run_id,
            epochs_logged=max((m.step for m in epochs), default=0),
            best_epoch=int(run.data.metrics.get(BEST_EPOCH, 0)),
            attempts=int(tags.get(ATTEMPTS, 0)),
            retries=int(tags.get(RETRIES, 0)),
            paused_seconds=paused,
        )

    def _create(self, trial) -> TrialRun:
        index = len(self.of_sweep()) + 1  # its place in start order, earlier drivers' runs included
        run = self.client.create_run(
            self.experiment_id,
            run_name=first_name(index, trial.config, self.searched),
            tags={
                ROLE: "trial", PARENT: self.parent_run_id, SWEEP: self.sweep_name,
                TASK: self.task_name, TRIAL_ID: trial.trial_id, STATUS: "running",
                **first_tags(index), **self.run_tags,
            },
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in trial.config.items()])
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / CONFIG_ARTIFACT
            path.write_text(yaml.safe_dump(self.full_config(trial.config), sort_keys=True))
            self.client.log_artifact(run_id, str(path))
        return TrialRun(run_id)
