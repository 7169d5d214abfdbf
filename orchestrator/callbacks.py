"""Tune callbacks that keep the sweep's ledger of trial outcomes up to date on the driver."""

from __future__ import annotations

import re
from pathlib import Path

from ray import tune

from orchestrator.outcomes import OutcomeLedger, TrialOutcome, fail, finish, record_result
from orchestrator.training import mark_ended


class LedgerCallback(tune.Callback):
    """Folds every result and trial end into an OutcomeLedger; runs before the other callbacks.

    A trial that had ended before the sweep was resumed keeps the outcome it had.
    """

    def __init__(self, ledger: OutcomeLedger):
        self.ledger = ledger

    def _live(self, trial) -> TrialOutcome | None:
        outcome = self.ledger.outcome(trial.trial_id, trial.config)
        return None if outcome.settled_earlier else outcome

    def on_trial_start(self, iteration, trials, trial, **info):
        if outcome := self._live(trial):
            outcome.status = "running"

    def on_trial_result(self, iteration, trials, trial, result, **info):
        if outcome := self._live(trial):
            record_result(outcome, result, self.ledger.metric, self.ledger.mode)

    def on_trial_complete(self, iteration, trials, trial, **info):
        if outcome := self._live(trial):
            finish(outcome, trial.last_result or {}, self.ledger.metric, self.ledger.max_epochs)
        _mark_ended(trial)

    def on_trial_error(self, iteration, trials, trial, **info):
        if outcome := self._live(trial):
            fail(outcome, error_text(trial))
        _mark_ended(trial)


def _mark_ended(trial) -> None:
    if trial.checkpoint is not None:
        mark_ended(trial.checkpoint)


def error_text(trial) -> str:
    """The text of a failed trial's error file, or a generic line when there is none."""
    path = trial.error_file
    if path and Path(path).is_file():
        return Path(path).read_text(errors="replace")
    return "the trial raised an error (no error file was written)"


def last_failure_text(trial) -> str:
    """The error of the trial's latest failed attempt (its stack, then the exception), without
    terminal colours: Ray Tune appends one `Failure # n` section per failure to the trial's
    error file; this is the last one."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", error_text(trial))
    sections = re.split(r"(?m)^Failure # \d+ \(occurred at [^)]*\)$", text)
    return sections[-1].strip() or text
