"""Attempts of a trial in its run: how many times its training started (the first time, each
retry after a failure, each resume of the sweep), and what ended each failed attempt.

A failed attempt leaves the tag `orchestrate.failure.attempt-<n>` (its error's last line) and
the artifact `errors/attempt-<n>.txt` (where it failed, then the whole error Ray Tune recorded).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from mlflow.entities import RunTag
from mlflow.tracking import MlflowClient

from orchestrator.callbacks import last_failure_text
from orchestrator.progress import failure_line
from orchestrator.tracking.names import (
    ATTEMPTS, ERRORS_ARTIFACT_DIR, FAILURE_OF_ATTEMPT, LAST_FAILURE, RETRIES)
from orchestrator.tracking.trial_runs import TrialRun

TAG_LIMIT = 5000  # MLflow's longest tag value


def attempt_started(client: MlflowClient, run: TrialRun) -> None:
    run.attempts += 1
    client.log_batch(run.run_id, tags=[RunTag(ATTEMPTS, str(run.attempts))])


def failure_of(trial) -> tuple[str, str]:
    """The one-line reason and the full text of the trial's latest failure, read now: a retried
    trial's next failure is appended to the same error file."""
    return failure_line(trial), last_failure_text(trial)


def attempt_failed(client: MlflowClient, run: TrialRun, failure: tuple[str, str], retried: bool) -> None:
    """Record the failure (`failure_of`) that ended the run's latest attempt; `retried`: Tune
    starts another."""
    attempt = max(run.attempts, 1)
    line, text = failure
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / f"attempt-{attempt}.txt"
        path.write_text(f"attempt {attempt} {line}\n\n{text}\n")
        client.log_artifact(run.run_id, str(path), ERRORS_ARTIFACT_DIR)
    tags = [RunTag(FAILURE_OF_ATTEMPT.format(attempt=attempt), line[:TAG_LIMIT]),
            RunTag(LAST_FAILURE, line[:TAG_LIMIT])]
    if retried:
        run.retries += 1
        tags.append(RunTag(RETRIES, str(run.retries)))
    client.log_batch(run.run_id, tags=tags)
