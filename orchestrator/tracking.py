"""MLflow: one experiment per task, a parent run per sweep, a nested child run per trial.

All MLflow calls happen on the driver, in a Tune callback: trials on other nodes need no route
to the tracking store, a sqlite store sees one writer, and the driver knows how each trial ended.
A child run is found again by its trial id, so a retried or resumed trial reuses its run.
A failing tracking store never stops the sweep: the calls that failed are counted and reported.
"""

from __future__ import annotations

import json
import re
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import yaml
from mlflow.entities import Metric, Param, RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from orchestrator.outcomes import OutcomeLedger, fail, finish, is_better, record_result
from orchestrator.progress import failure_line
from orchestrator.training import MODEL_FILE, RESULT_FILE

ROLE, STATUS, REASON, GUARD = "orchestrate.role", "orchestrate.status", "orchestrate.reason", "orchestrate.guard"
SWEEP, TASK, TRIAL_ID = "orchestrate.sweep", "orchestrate.task", "orchestrate.trial_id"
PARENT = "mlflow.parentRunId"
NODE_ID = "orchestrate.node_id"  # the Ray node the trial's latest epoch ran on
DATA_LEAK = "orchestrate.data_leak"  # a label leak in the data the user chose to allow
RETRIES, LAST_FAILURE = "orchestrate.retries", "orchestrate.last_failure"  # a trial Tune retried
MODEL_ARTIFACT_DIR = "model"
CONFIG_ARTIFACT = "config.yaml"
REPORTED_PREFIXES = ("train/", "val/", "probe/")
RETRY_AFTER_SECONDS = 30.0


def best_metric_key(metric: str) -> str:
    """The metric under which a trial's best value (the one its exported weights reach) is kept."""
    return f"best/{metric}"


@dataclass(frozen=True)
class FinalResult:
    """How Ray Tune last saw a trial: its last result, and its error text if it failed."""

    last_result: dict[str, Any]
    error: str | None


class TrackingUnavailable(RuntimeError):
    """The tracking store cannot be reached at start; the message is one line for a user."""


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
        raise TrackingUnavailable(
            f"cannot reach the MLflow tracking store {client.tracking_uri!r} ({_cause(error)}); "
            "check --tracking-uri or MLFLOW_TRACKING_URI"
        ) from None


def _cause(error: Exception) -> str:
    """The informative bit of a store error: the OS error if there is one, else its first line."""
    found = re.search(r"\[Errno -?\d+\] [^\"')(]+", str(error))
    if found:
        return found.group(0).strip()
    first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
    return f"{type(error).__name__}: {first_line}" if first_line else type(error).__name__


class MlflowTracker(tune.Callback):
    """Mirrors a task's sweep into MLflow as it runs. Place it after the LedgerCallback."""

    def __init__(
        self,
        client: MlflowClient,
        experiment_id: str,
        sweep_name: str,
        task_name: str,
        ledger: OutcomeLedger,
        sweep_params: dict[str, Any],
        full_config: Callable[[dict[str, Any]], dict[str, Any]],
        run_tags: dict[str, str] | None = None,
    ):
        self.client = client
        self.experiment_id = experiment_id
        self.sweep_name = sweep_name
        self.task_name = task_name
        self.ledger = ledger
        self.sweep_params = sweep_params
        self.full_config = full_config
        self.run_tags = dict(run_tags or {})  # set on the sweep run and every trial run
        self.parent_run_id: str | None = None
        self.trial_runs: dict[str, str] = {}
        self.logged_steps: dict[str, int] = {}
        self.failed_calls: list[str] = []
        self.retries: dict[str, int] = {}  # trial id -> failed attempts Tune retried
        self.unreachable_until = 0.0

    # Tune pickles its callbacks with the experiment state; a client holds locks, so it is
    # left out and rebuilt from its URI.
    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["client"] = self.client.tracking_uri
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = MlflowClient(tracking_uri=state["client"])

    # -- the parent run -------------------------------------------------------------------
    def start_sweep(self) -> str:
        """Create (or, on resume, find) the sweep's parent run. Call before Tune starts."""
        existing = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{SWEEP}` = '{self.sweep_name}' and tags.`{ROLE}` = 'sweep'",
            max_results=1,
        )
        if existing:
            self.parent_run_id = existing[0].info.run_id
            self.client.update_run(self.parent_run_id, status="RUNNING")
            self._recall_earlier_trials()
        else:
            run = self.client.create_run(
                self.experiment_id,
                run_name=self.sweep_name,
                tags={ROLE: "sweep", SWEEP: self.sweep_name, TASK: self.task_name, **self.run_tags},
            )
            self.parent_run_id = run.info.run_id
            self.client.log_batch(
                self.parent_run_id,
                params=[Param(key, str(value)[:6000]) for key, value in self.sweep_params.items()],
            )
        return self.parent_run_id

    def end_sweep(self, final_results: dict[str, FinalResult] | None) -> None:
        """Close the parent run and any trial run left running (see _close_unfinished)."""
        self._safely("close trial runs left running", lambda: self._close_unfinished(final_results))
        counts = self.ledger.counts()
        best = self.ledger.best()

        def log() -> None:
            metrics = [Metric(f"trials/{status}", count, _now(), 0) for status, count in counts.items()]
            if best is not None:
                metrics.append(Metric(best_metric_key(self.ledger.metric), best.best_metric, _now(), 0))
                self.client.set_tag(self.parent_run_id, "orchestrate.best_trial", best.trial_id)
            self.client.log_batch(self.parent_run_id, metrics=metrics)
            self.client.set_terminated(self.parent_run_id, "FINISHED")

        self._safely("end the sweep run", log)

    # -- Tune hooks -----------------------------------------------------------------------
    def on_trial_start(self, iteration, trials, trial, **info):
        if self._settled(trial):
            return
        self._safely(f"start the run of trial {trial.trial_id}", lambda: self._trial_run(trial))

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if self._settled(trial):
            return
        step = int(result.get("training_iteration", 0))
        if step <= self.logged_steps.get(trial.trial_id, 0):
            return  # re-run after a restore from an older checkpoint: MLflow has this epoch
        metrics = [
            Metric(key, float(value), _now(), step)
            for key, value in result.items()
            if key.startswith(REPORTED_PREFIXES) and isinstance(value, (int, float))
            and not isinstance(value, bool)
        ]
        tags = [RunTag(NODE_ID, str(result["node_id"]))] if result.get("node_id") else []
        # where the trial trained (node, device, GPU, CUDA, torch): see orchestrator/devices.py
        tags += [RunTag(key, str(value)) for key, value in (result.get("run_tags") or {}).items()]

        def log() -> None:
            self.client.log_batch(self._trial_run(trial), metrics=metrics, tags=tags)
            self.logged_steps[trial.trial_id] = step

        self._safely(f"log epoch {step} of trial {trial.trial_id}", log)

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if self._settled(trial):
            return
        self._safely(
            f"log the checkpoint of trial {trial.trial_id}",
            lambda: self._log_if_best(trial, checkpoint),
        )

    def on_trial_recover(self, iteration, trials, trial, **info):
        if self._settled(trial):
            return
        # a retry hides nothing: the run counts them and keeps the latest failure
        self.retries[trial.trial_id] = self.retries.get(trial.trial_id, 0) + 1
        tags = [RunTag(RETRIES, str(self.retries[trial.trial_id])),
                RunTag(LAST_FAILURE, failure_line(trial)[:5000])]
        self._safely(f"record the retry of trial {trial.trial_id}",
                     lambda: self.client.log_batch(self._trial_run(trial), tags=tags))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if self._settled(trial):
            return
        self._safely(f"close the run of trial {trial.trial_id}", lambda: self._close(trial, "FINISHED"))

    def on_trial_error(self, iteration, trials, trial, **info):
        if self._settled(trial):
            return
        self._safely(f"close the run of trial {trial.trial_id}", lambda: self._close(trial, "FAILED"))

    # -- helpers --------------------------------------------------------------------------
    def _trial_run(self, trial) -> str:
        if trial.trial_id in self.trial_runs:
            return self.trial_runs[trial.trial_id]
        found = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TRIAL_ID}` = '{trial.trial_id}' and tags.`{PARENT}` = '{self.parent_run_id}'",
            max_results=1,
        )
        if found:
            run_id = found[0].info.run_id
            self.client.update_run(run_id, status="RUNNING")
            self.client.set_tag(run_id, STATUS, "running")
            history = self.client.get_metric_history(run_id, self.ledger.metric)
            self.logged_steps[trial.trial_id] = max((m.step for m in history), default=0)
        else:
            run_id = self._create_trial_run(trial)
        self.trial_runs[trial.trial_id] = run_id
        return run_id

    def _create_trial_run(self, trial) -> str:
        run = self.client.create_run(
            self.experiment_id,
            run_name=f"{self.sweep_name}-{trial.trial_id}",
            tags={
                ROLE: "trial", PARENT: self.parent_run_id, SWEEP: self.sweep_name,
                TASK: self.task_name, TRIAL_ID: trial.trial_id, STATUS: "running",
                **self.run_tags,
            },
        )
        run_id = run.info.run_id
        self.client.log_batch(run_id, params=[Param(k, str(v)) for k, v in trial.config.items()])
        with tempfile.TemporaryDirectory() as directory:
            path = Path(directory) / CONFIG_ARTIFACT
            path.write_text(yaml.safe_dump(self.full_config(trial.config), sort_keys=True))
            self.client.log_artifact(run_id, str(path))
        return run_id

    def _log_if_best(self, trial, checkpoint) -> None:
        run_id = self._trial_run(trial)
        with checkpoint.as_directory() as directory:
            history = json.loads((Path(directory) / RESULT_FILE).read_text())["history"]
            value = history[-1].get(self.ledger.metric)
            previous = [h.get(self.ledger.metric) for h in history[:-1]]
            best_before = None
            for earlier in previous:
                if isinstance(earlier, (int, float)) and is_better(earlier, best_before, self.ledger.mode):
                    best_before = earlier
            if not isinstance(value, (int, float)) or not is_better(value, best_before, self.ledger.mode):
                return
            self.client.log_artifact(run_id, str(Path(directory) / MODEL_FILE), MODEL_ARTIFACT_DIR)
            self.client.log_artifact(run_id, str(Path(directory) / RESULT_FILE), MODEL_ARTIFACT_DIR)
        epoch = len(history)
        self.client.log_batch(
            run_id,
            metrics=[
                Metric(best_metric_key(self.ledger.metric), float(value), _now(), epoch),
                Metric("best/epoch", epoch, _now(), epoch),
            ],
        )

    def _close(self, trial, mlflow_status: str) -> None:
        run_id = self._trial_run(trial)
        outcome = self.ledger.outcome(trial.trial_id, trial.config)
        tags = [RunTag(STATUS, outcome.status), RunTag(REASON, outcome.reason[:5000])]
        if outcome.guard:
            tags.append(RunTag(GUARD, outcome.guard))
            last = trial.last_result or {}
            verdict = {key: last[key] for key in last if key.startswith("health/")}
            with tempfile.TemporaryDirectory() as directory:
                path = Path(directory) / "health_verdict.json"
                path.write_text(json.dumps(verdict, indent=2, default=str))
                self.client.log_artifact(run_id, str(path))
        self.client.log_batch(run_id, tags=tags)
        self.client.set_terminated(run_id, mlflow_status)

    def _settled(self, trial) -> bool:
        """An ended trial Tune restarted after a resume: its run is final and stays untouched."""
        outcome = self.ledger.trials.get(trial.trial_id)
        return outcome is not None and outcome.settled_earlier

    def _safely(self, what: str, call: Callable[[], Any]) -> None:
        """Run one tracking call; a failure is recorded, never raised.

        After a failure the store is left alone for RETRY_AFTER_SECONDS (each call to a dead
        server costs seconds of retries, paid by the whole sweep); skipped calls are recorded too.
        """
        if time.monotonic() < self.unreachable_until:
            self.failed_calls.append(f"skipped ({what}): the tracking store was unreachable")
            return
        try:
            call()
        except Exception as error:  # noqa: BLE001 - tracking must never stop the sweep
            self.failed_calls.append(f"could not {what}: {_cause(error)}")
            self.unreachable_until = time.monotonic() + RETRY_AFTER_SECONDS

    def _trial_runs_of_sweep(self) -> list:
        return self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{PARENT}` = '{self.parent_run_id}' and tags.`{ROLE}` = 'trial'",
            max_results=50000,
        )

    def _recall_earlier_trials(self) -> None:
        """On resume: put the trials that ended before the interruption back in the ledger."""
        for run in self._trial_runs_of_sweep():
            tags = run.data.tags
            if tags.get(STATUS, "running") in ("running", "interrupted"):
                continue  # Tune resumes it, or it is closed at the end (_close_unfinished)
            outcome = self.ledger.outcome(tags[TRIAL_ID], dict(run.data.params))
            outcome.settled_earlier = True
            outcome.status = tags[STATUS]
            outcome.reason = tags.get(REASON, "")
            outcome.guard = tags.get(GUARD)
            outcome.guard_is_failure = outcome.status == "stopped"
            outcome.best_metric = run.data.metrics.get(best_metric_key(self.ledger.metric))
            outcome.last_metric = run.data.metrics.get(self.ledger.metric)
            outcome.epochs = int(run.data.metrics.get("best/epoch", 0))

    def _close_unfinished(self, final_results: dict[str, FinalResult] | None) -> None:
        """After Tune returns, no trial run may stay RUNNING.

        final_results maps each trial Tune knows to its last result and error (None when Tune
        itself raised). A trial whose last result is not `done` was interrupted: `--resume`
        reopens its run. A finished trial whose run was not closed (its driver died first) is
        closed from its last result. A run Tune has no record of (its driver was killed before
        Tune's experiment state recorded the trial) can never finish: it is `failed`.
        """
        for run in self._trial_runs_of_sweep():
            if run.data.tags.get(STATUS, "running") != "running":
                continue
            trial_id = run.data.tags.get(TRIAL_ID, "?")
            outcome = self.ledger.outcome(trial_id, dict(run.data.params))
            final = None if final_results is None else final_results.get(trial_id)
            if final_results is not None and final is None:
                status, mlflow_status = "failed", "FAILED"
                reason = ("the sweep's driver was killed while this trial ran, before Ray Tune "
                          "recorded it; the resumed sweep sampled a new trial in its place")
                outcome.status, outcome.reason = status, reason
            elif final is not None and final.error:
                fail(outcome, final.error)
                status, mlflow_status, reason = "failed", "FAILED", outcome.reason
            elif final is not None and final.last_result.get("done"):
                record_result(outcome, final.last_result, self.ledger.metric, self.ledger.mode)
                finish(outcome, final.last_result, self.ledger.metric, self.ledger.max_epochs)
                status, mlflow_status, reason = outcome.status, "FINISHED", outcome.reason
            else:
                status, mlflow_status = "interrupted", "KILLED"
                reason = (f"the sweep stopped before this trial finished; "
                          f"`orchestrate sweep --resume --name {self.sweep_name}` continues it")
            self.client.log_batch(run.info.run_id, tags=[RunTag(STATUS, status), RunTag(REASON, reason)])
            self.client.set_terminated(run.info.run_id, mlflow_status)


def _now() -> int:
    return int(time.time() * 1000)
