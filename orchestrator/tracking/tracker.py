"""The Ray Tune callback that mirrors a task's sweep into MLflow as it runs.

All MLflow calls happen on the driver: trials on other nodes need no route to the tracking
store, a sqlite store sees one writer, and the driver knows how each trial ended. The calls a
trial's report causes run on a writer thread (writer.py), so no trial waits for MLflow. This
class only routes Tune's events; the sweep run (sweep_run.py), the trial runs (trial_runs.py), the
epochs they mirror (trial_history.py) and the attempts (attempts.py) each have their module.
"""

from __future__ import annotations

import copy
import json
import tempfile
from pathlib import Path
from typing import Any, Callable, Sequence

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient
from ray import tune

from orchestrator.outcomes import OutcomeLedger
from orchestrator.tracking import durations
from orchestrator.tracking.attempts import attempt_failed, attempt_started, failure_of
from orchestrator.tracking.names import GUARD, HEALTH_VERDICT_ARTIFACT, REASON, STATUS
from orchestrator.tracking.presentation import closing_status, describe_sweep, description_tag, rename_trials
from orchestrator.tracking.store import GuardedCalls
from orchestrator.tracking.sweep_run import SweepRun
from orchestrator.tracking.trial_history import mirror_checkpoint
from orchestrator.tracking.trial_runs import TrialRuns
from orchestrator.tracking.unfinished import (
    FinalResult, close_unfinished, end_settled_runs_left_running, recall_settled_trials)
from orchestrator.tracking.writer import TrackingWriter
from orchestrator.trial_figures import PLOTS_DIR, save_figures


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
        resume_command: str | None = None,
        searched: Sequence[str] = (),
    ):
        """searched: the search space's parameters in its order (trial names show those that
        vary most; default: every parameter of the trials' configs)."""
        self.client = client
        self.ledger = ledger
        self.resume_command = resume_command or f"orchestrate sweep --resume --name {sweep_name}"
        tags = dict(run_tags or {})  # set on the sweep run and every trial run
        self.sweep = SweepRun(client, experiment_id, sweep_name, task_name, tags, sweep_params)
        self.trials = TrialRuns(client, experiment_id, sweep_name, task_name, tags, full_config, searched)
        self.safely = GuardedCalls()
        self.writer = TrackingWriter(self.safely)  # the Tune hooks' calls, off the trials' path

    @property
    def parent_run_id(self) -> str | None:
        return self.sweep.run_id

    @property
    def failed_calls(self) -> list[str]:
        return self.safely.failed

    # Tune pickles its callbacks with the experiment state; a client and the writer hold
    # locks, so they are left out and rebuilt (the client from its URI). The writer's calls
    # are waited for first: they add runs to the dicts being pickled.
    def __getstate__(self) -> dict[str, Any]:
        self.writer.flush()
        state = dict(self.__dict__)
        state["client"] = self.client.tracking_uri
        del state["writer"]
        for part in ("sweep", "trials"):
            state[part] = copy.copy(state[part])
            state[part].client = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.client = MlflowClient(tracking_uri=state["client"])
        self.sweep.client = self.trials.client = self.client
        self.writer = TrackingWriter(self.safely)

    # -- the sweep run --------------------------------------------------------------------
    def start_sweep(self) -> str:
        """Create (or, on resume, reopen) the sweep's run. Call before Tune starts."""
        existing = self.sweep.find()
        if existing is None:
            self.trials.parent_run_id = self.sweep.create()
        else:
            self.trials.parent_run_id = existing.info.run_id
            self.sweep.reopen(existing, self.trials.of_sweep)
            recall_settled_trials(self.ledger, self.trials.of_sweep())
            end_settled_runs_left_running(self.client, self.trials.of_sweep())
        return self.sweep.run_id

    def end_sweep(self, final_results: dict[str, FinalResult] | None, interrupted: bool = False) -> None:
        """Close the trial runs left running (see unfinished.close_unfinished), then the sweep run:
        FINISHED, or KILLED and tagged `interrupted` when the sweep was interrupted. The trial
        runs are renamed now that every config is known, the sweep run gets its summary as its
        description and the sweep's plots (orchestrator/sweep_plots.py) under plots/."""
        from orchestrator.sweep_plots import log_sweep_plots  # it reads the package's names

        self.flush()
        self.safely("close trial runs left running", lambda: close_unfinished(
            self.trials, self.ledger, final_results, self.resume_command, self._mirror))
        description: list[str] = []
        self.safely("name the trial runs", lambda: description.append(self._rename_trials()))
        self.safely("end the sweep run", lambda: self.sweep.end(
            self.ledger.counts(), self.ledger.best(), self.ledger.metric, interrupted,
            self.resume_command, description[0] if description else None))
        self.safely("draw the sweep's plots", lambda: log_sweep_plots(self.client, self.sweep.run_id))

    def flush(self) -> None:
        """Wait for the tracking calls of the Tune hooks so far (they run on a writer thread)."""
        self.writer.flush()

    def log_figures(self, trial_id: str, pngs: dict[str, bytes]) -> None:
        """Put a trial's figures (PNG bytes by file name) in its run's plots/, over earlier ones."""
        run = self.trials.runs.get(trial_id)
        if run is not None and pngs:
            self.writer.submit(f"log the figures of trial {trial_id}",
                               lambda: log_pngs(self.client, run.run_id, pngs))

    # -- Tune hooks -----------------------------------------------------------------------
    # Each hook hands its calls to the writer and returns: the trial that reported goes on.
    def on_trial_start(self, iteration, trials, trial, **info):
        if not self._settled(trial):
            self.writer.submit(f"record the start of trial {trial.trial_id}",
                               lambda: attempt_started(self.client, self.trials.of(trial)))

    def on_checkpoint(self, iteration, trials, trial, checkpoint, **info):
        if not self._settled(trial):
            self.writer.submit(f"log the epochs of trial {trial.trial_id}",
                               lambda: self._mirror(trial, checkpoint, rerun_replaces=True))

    def on_trial_recover(self, iteration, trials, trial, **info):
        if not self._settled(trial):  # a retry hides nothing: the run records each failure
            failure = failure_of(trial)
            self.writer.submit(f"record the retry of trial {trial.trial_id}",
                               lambda: attempt_failed(self.client, self.trials.of(trial), failure, retried=True))

    def on_trial_complete(self, iteration, trials, trial, **info):
        if not self._settled(trial):
            self.writer.submit(f"close the run of trial {trial.trial_id}",
                               lambda: self._close(trial, "FINISHED"))

    def on_trial_error(self, iteration, trials, trial, **info):
        if not self._settled(trial):
            failure = failure_of(trial)
            self.writer.submit(f"record the failure of trial {trial.trial_id}",
                               lambda: attempt_failed(self.client, self.trials.of(trial), failure, retried=False))
            self.writer.submit(f"close the run of trial {trial.trial_id}",
                               lambda: self._close(trial, "FAILED"))

    # -- helpers --------------------------------------------------------------------------
    def _rename_trials(self) -> str:
        """Name and colour the trial runs after all their configs; returns the sweep's summary."""
        runs = self.trials.of_sweep()
        names = rename_trials(self.client, runs, self.trials.searched)
        return describe_sweep(self.sweep.sweep_name, self.ledger, runs, names)

    def _mirror(self, trial, checkpoint: Any, rerun_replaces: bool) -> None:
        """Mirror the checkpoint into the trial's run. A new checkpoint no longer than the run
        is a re-run of epochs (rerun_replaces): the run is replaced by one of its history.

        A checkpoint Tune deleted (it kept better ones) before the writer reached it is
        skipped: every later checkpoint holds the whole history and the best epoch's weights.
        """
        if not exists(checkpoint):
            return
        run = self.trials.of(trial)
        metric, mode = self.ledger.metric, self.ledger.mode
        if not mirror_checkpoint(self.client, run, checkpoint, metric, mode) and rerun_replaces:
            mirror_checkpoint(self.client, self.trials.replace(trial.trial_id), checkpoint, metric, mode)

    def _close(self, trial, mlflow_status: str) -> None:
        run = self.trials.of(trial)
        if trial.checkpoint is not None:  # epochs a failed tracking call may have left out
            self._mirror(trial, trial.checkpoint, rerun_replaces=False)
        outcome = self.ledger.outcome(trial.trial_id, trial.config)
        tags = [RunTag(STATUS, outcome.status), RunTag(REASON, outcome.reason[:5000]),
                description_tag(outcome, self.ledger.metric)]
        if outcome.guard:
            tags.append(RunTag(GUARD, outcome.guard))
            last = trial.last_result or {}
            verdict = {key: last[key] for key in last if key.startswith("health/")}
            with tempfile.TemporaryDirectory() as directory:
                path = Path(directory) / HEALTH_VERDICT_ARTIFACT
                path.write_text(json.dumps(verdict, indent=2, default=str))
                self.client.log_artifact(run.run_id, str(path))
        self.trials.close(run.run_id, tags, closing_status(outcome, mlflow_status),
                          durations.end_time_ms(run.paused_seconds))

    def _settled(self, trial) -> bool:
        """An ended trial Tune restarted after a resume: its run is final and stays untouched."""
        outcome = self.ledger.trials.get(trial.trial_id)
        return outcome is not None and outcome.settled_earlier


def log_pngs(client: MlflowClient, run_id: str, pngs: dict[str, bytes]) -> None:
    with tempfile.TemporaryDirectory() as directory:
        save_figures(Path(directory), pngs)
        client.log_artifacts(run_id, str(Path(directory) / PLOTS_DIR), PLOTS_DIR)


def exists(checkpoint: Any) -> bool:
    """Whether a Tune checkpoint's directory is still in its storage."""
    from pyarrow.fs import FileType

    return checkpoint.filesystem.get_file_info(checkpoint.path).type != FileType.NotFound
