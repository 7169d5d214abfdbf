"""Tune callbacks that keep the sweep's ledger of trial outcomes up to date on the driver."""

from __future__ import annotations

from pathlib import Path

from ray import tune

from orchestrator.outcomes import OutcomeLedger, fail, finish, record_result


class LedgerCallback(tune.Callback):
    """Folds every result and trial end into an OutcomeLedger; runs before the other callbacks."""

    def __init__(self, ledger: OutcomeLedger):
        self.ledger = ledger

    def on_trial_start(self, iteration, trials, trial, **info):
        self.ledger.outcome(trial.trial_id, trial.config).status = "running"

    def on_trial_result(self, iteration, trials, trial, result, **info):
        record_result(self.ledger.outcome(trial.trial_id, trial.config), result,
                      self.ledger.metric, self.ledger.mode)

    def on_trial_complete(self, iteration, trials, trial, **info):
        finish(self.ledger.outcome(trial.trial_id, trial.config), trial.last_result or {},
               self.ledger.metric, self.ledger.max_epochs)

    def on_trial_error(self, iteration, trials, trial, **info):
        fail(self.ledger.outcome(trial.trial_id, trial.config), error_text(trial))


def error_text(trial) -> str:
    """The text of a failed trial's error file, or a generic line when there is none."""
    path = trial.error_file
    if path and Path(path).is_file():
        return Path(path).read_text(errors="replace")
    return "the trial raised an error (no error file was written)"
