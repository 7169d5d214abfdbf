"""One winner everywhere: the terminal summary, the sweep run's orchestrate.best_trial tag and
`orchestrate best` break ties the same way (earliest epoch, then the trial started first), never
pick a trial a failure guard stopped, and a task without a winner says why."""

from __future__ import annotations

import pytest
from mlflow.tracking import MlflowClient

from orchestrator.commands import _no_winner_text
from orchestrator.export import NothingToExport, find_winner
from orchestrator.outcomes import OutcomeLedger
from orchestrator.tracking import MlflowTracker, open_experiment

METRIC = "val/accuracy"
# trial id, status, guard, best value, epoch of the best value; listed in start order
TRIALS = [
    ("first", "completed", None, 0.80, 5),
    ("second", "pruned", None, 0.80, 3),
    ("third", "converged", "plateau", 0.80, 3),
    ("leaky", "stopped", "leakage", 1.00, 2),
    ("weaker", "completed", None, 0.70, 1),
]


class TaskStub:
    """What find_winner reads of a task: its name, metric and mode."""

    name, metric, mode = "ties", METRIC, "max"


def ledger_of(trials, mode="max") -> OutcomeLedger:
    ledger = OutcomeLedger(METRIC, mode, max_epochs=8)
    for trial_id, status, guard, value, epoch in trials:
        outcome = ledger.outcome(trial_id, {"learning_rate": 0.01})
        outcome.status, outcome.guard, outcome.best_metric, outcome.best_epoch = status, guard, value, epoch
    return ledger


def test_the_ledger_breaks_ties_by_earliest_epoch_then_start_order_and_skips_stopped_trials():
    assert ledger_of(TRIALS).best().trial_id == "second"
    assert ledger_of(TRIALS[2:]).best().trial_id == "third"
    assert ledger_of([("a", "completed", None, 0.3, 4), ("b", "completed", None, 0.3, 4)],
                     mode="min").best().trial_id == "a"


def record_sweep(client: MlflowClient, trials) -> str:
    """A sweep run and its trial runs as the tracker records them, started in list order."""
    experiment_id = open_experiment(client, TaskStub.name)
    sweep = client.create_run(experiment_id, run_name="s", start_time=1_000,
                              tags={"orchestrate.role": "sweep"})
    client.log_param(sweep.info.run_id, "metric", METRIC)
    client.log_param(sweep.info.run_id, "mode", "max")
    for order, (trial_id, status, guard, value, epoch) in enumerate(trials):
        run = client.create_run(experiment_id, run_name=trial_id, start_time=2_000 + order, tags={
            "orchestrate.role": "trial", "mlflow.parentRunId": sweep.info.run_id,
            "orchestrate.status": status, "orchestrate.trial_id": trial_id,
            **({"orchestrate.guard": guard} if guard else {})})
        client.log_metric(run.info.run_id, f"best/{METRIC}", value, step=epoch)
        client.log_metric(run.info.run_id, "best/epoch", epoch, step=epoch)
    return experiment_id


def test_orchestrate_best_and_the_best_trial_tag_pick_the_summarys_winner(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment_id = record_sweep(client, TRIALS)
    winner = find_winner(client, TaskStub())
    assert client.get_run(winner.run_id).info.run_name == ledger_of(TRIALS).best().trial_id == "second"

    tracker = MlflowTracker(client, experiment_id, "tagged", TaskStub.name, ledger_of(TRIALS),
                            sweep_params={}, full_config=dict)
    tracker.start_sweep()
    tracker.end_sweep(final_results={})
    assert client.get_run(tracker.parent_run_id).data.tags["orchestrate.best_trial"] == "second"


def test_a_task_whose_trials_a_guard_stopped_has_no_winner_and_says_why(tmp_path):
    stopped = [("leaky", "stopped", "leakage", 1.0, 2), ("flat", "stopped", "flat_line", 0.2, 3)]
    ledger = ledger_of(stopped)
    assert ledger.best() is None
    assert ledger.why_no_winner() == "2 stopped (1 flat_line, 1 leakage)"
    assert _no_winner_text("ties", ledger) == (
        "no trial of ties finished well (2 stopped (1 flat_line, 1 leakage)), so it has no "
        "winner; see the reasons above (`orchestrate report` keeps them)")
    failed = ledger_of([("a", "failed", None, None, None)])
    assert _no_winner_text("ties", failed).startswith("every trial of ties failed")

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    record_sweep(client, stopped)
    with pytest.raises(NothingToExport, match=r"2 of its 2 trials were stopped by a failure guard "
                       r"\(1 flat_line, 1 leakage\) and such trials are never exported"):
        find_winner(client, TaskStub())
