"""What the tracker does with trials at a sweep's edges: on resume, the trials that ended
before the interruption go back into the ledger; at the sweep's end, no trial run stays RUNNING.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

from mlflow.entities import Run, RunTag

from orchestrator.outcomes import BEST_EPOCH, OutcomeLedger, best_metric_key, fail, finish, record_result
from orchestrator.tracking import durations
from orchestrator.tracking.names import GUARD, REASON, STATUS, TRIAL_ID
from orchestrator.run_presentation import MLFLOW_STATUS
from orchestrator.tracking.presentation import closing_status, description_tag
from orchestrator.tracking.trial_runs import TrialRuns


@dataclass(frozen=True)
class FinalResult:
    """How Ray Tune last saw a trial: its last result, its error text if it failed, and its
    latest checkpoint if it has one."""

    last_result: dict[str, Any]
    error: str | None
    checkpoint: Any = None


@dataclass(frozen=True)
class TrialOf:
    """A trial as the trial runs know it (id and config), for a trial Tune no longer runs."""

    trial_id: str
    config: dict[str, Any]


def recall_settled_trials(ledger: OutcomeLedger, sweep_runs: Iterable[Run]) -> None:
    """On resume: put the trials that ended before the interruption back in the ledger, marked
    settled_earlier (their runs are final and stay untouched)."""
    for run in sweep_runs:
        tags = run.data.tags
        if tags.get(STATUS, "running") in ("running", "interrupted"):
            continue  # Tune resumes it, or it is closed at the end (close_unfinished)
        outcome = ledger.outcome(tags[TRIAL_ID], dict(run.data.params))
        outcome.settled_earlier = True
        outcome.status = tags[STATUS]
        outcome.reason = tags.get(REASON, "")
        outcome.guard = tags.get(GUARD)
        outcome.guard_is_failure = outcome.status == "stopped"
        outcome.best_metric = run.data.metrics.get(best_metric_key(ledger.metric))
        outcome.last_metric = run.data.metrics.get(ledger.metric)
        outcome.best_epoch = int(run.data.metrics[BEST_EPOCH]) if BEST_EPOCH in run.data.metrics else None
        outcome.epochs = outcome.best_epoch or 0


def end_settled_runs_left_running(client: Any, sweep_runs: Iterable[Run]) -> None:
    """On resume: end the runs tagged with how their trial ended but still RUNNING.

    Closing a run is two calls (its tags, then its end, trial_runs.TrialRuns.close); a driver
    killed between them leaves a run that says `completed` and is RUNNING. Its trial is settled
    (recall_settled_trials), so nothing else would ever end it: it ends here as its tags say,
    at the last time its driver wrote it.
    """
    for run in sweep_runs:
        status = run.data.tags.get(STATUS, "running")
        if status in ("running", "interrupted") or run.info.status != "RUNNING":
            continue
        client.set_terminated(run.info.run_id, MLFLOW_STATUS.get(status, "FINISHED"),
                              end_time=durations.last_active_ms(client, run))


def close_unfinished(
    trials: TrialRuns,
    ledger: OutcomeLedger,
    final_results: dict[str, FinalResult] | None,
    resume_command: str,
    mirror: Callable[[Any, Any, bool], None],
) -> None:
    """After Tune returns, no trial run may stay RUNNING.

    final_results maps each trial Tune knows to its last result and error (None when Tune
    itself raised). A trial whose last result is not `done` was interrupted: `--resume`
    reopens its run. A finished trial whose run was not closed (its driver died first) is
    closed from its last result and checkpoint (mirror(trial, checkpoint, rerun_replaces)). A
    run Tune has no record of (its driver was killed before Tune's experiment state recorded
    the trial) belongs to no trial of the sweep and can never finish: it is tagged `failed`
    with why, ended when it was last active, and deleted (hidden from searches), so the
    sweep's runs are Tune's trials; so is a closed run Tune has no record of
    (`_drop_if_unknown_to_tune`).
    """
    for run in trials.of_sweep():
        if run.data.tags.get(STATUS, "running") != "running":
            _drop_if_unknown_to_tune(trials, ledger, final_results, run)
            continue
        trial_id = run.data.tags.get(TRIAL_ID, "?")
        outcome = ledger.outcome(trial_id, dict(run.data.params))
        final = None if final_results is None else final_results.get(trial_id)
        known = trials.runs.get(trial_id)
        end_time = (durations.end_time_ms(known.paused_seconds) if known
                    else durations.last_active_ms(trials.client, run))
        if final_results is not None and final is None:
            status, mlflow_status = "failed", "FAILED"
            reason = ("the sweep's driver was killed while this trial ran, before Ray Tune "
                      "recorded it; the resumed sweep sampled a new trial in its place")
            outcome.status, outcome.reason = status, reason
        elif final is not None and final.error:
            fail(outcome, final.error)
            status, mlflow_status, reason = "failed", "FAILED", outcome.reason
        elif final is not None and final.last_result.get("done"):
            if final.checkpoint is not None:
                mirror(TrialOf(trial_id, outcome.config), final.checkpoint, False)
            record_result(outcome, final.last_result, ledger.metric, ledger.mode)
            finish(outcome, final.last_result, ledger.metric, ledger.max_epochs)
            status, reason = outcome.status, outcome.reason
            mlflow_status = closing_status(outcome, "FINISHED")
        else:
            status, mlflow_status = "interrupted", "KILLED"
            reason = f"the sweep stopped before this trial finished; `{resume_command}` continues it"
        run_id = trials.runs[trial_id].run_id if trial_id in trials.runs else run.info.run_id
        trials.close(run_id, [RunTag(STATUS, status), RunTag(REASON, reason[:5000]),
                              description_tag(outcome, ledger.metric, status, reason)],
                     mlflow_status, end_time)
        if final_results is not None and final is None:
            trials.client.delete_run(run_id)
            ledger.trials.pop(trial_id, None)  # not a trial of this sweep either


def _drop_if_unknown_to_tune(trials: TrialRuns, ledger: OutcomeLedger,
                             final_results: dict[str, FinalResult] | None, run: Run) -> None:
    """A closed run of a trial that started and ended between two of Tune's saves of its state,
    before the driver was killed: Tune never recorded it and sampled another trial in its place,
    so, like a run cut off unrecorded, it is tagged why and deleted (its directory went with the
    resume, resume_point.remove_unrecorded_trials)."""
    trial_id = run.data.tags.get(TRIAL_ID, "?")
    outcome = ledger.trials.get(trial_id)
    if final_results is None or trial_id in final_results or outcome is None or not outcome.settled_earlier:
        return  # only a run closed before the resume can be one Tune lost
    reason = ("the sweep's driver was killed after this trial ended, before Ray Tune recorded it; "
              "the resumed sweep sampled a new trial in its place")
    trials.client.log_batch(run.info.run_id, tags=[RunTag(REASON, reason)])
    trials.client.delete_run(run.info.run_id)
    ledger.trials.pop(trial_id, None)
