"""Which trials get their figures drawn after the sweep (`--figures-of-best`)."""

from orchestrator.best_figures import FIGURE_TRIALS, leaders_to_draw
from orchestrator.outcomes import OutcomeLedger


def ledger_of(results: dict[str, tuple[str, float | None]]) -> OutcomeLedger:
    """A ledger of trials in start order: trial id -> (status, best metric)."""
    ledger = OutcomeLedger("val/auroc", "max", max_epochs=4)
    for trial_id, (status, best) in results.items():
        outcome = ledger.outcome(trial_id, {})
        outcome.status, outcome.best_metric, outcome.best_epoch = status, best, 2
    return ledger


LEDGER = ledger_of({
    "a": ("completed", 0.70), "b": ("pruned", 0.90), "c": ("stopped", 0.99),
    "d": ("completed", 0.80), "e": ("converged", 0.75), "f": ("failed", None),
})
CHECKPOINTS = {trial_id: f"checkpoint-{trial_id}" for trial_id in "abcdef"}


def ids(outcomes) -> list[str]:
    return [outcome.trial_id for outcome in outcomes]


def test_the_best_finished_trials_are_drawn_winner_first_never_a_stopped_or_failed_one():
    assert ids(leaders_to_draw(LEDGER, CHECKPOINTS)) == ["b", "d", "e"][:FIGURE_TRIALS]
    assert ids(leaders_to_draw(LEDGER, CHECKPOINTS, 5)) == ["b", "d", "e", "a"]


def test_a_leader_without_a_checkpoint_has_nothing_to_draw_from():
    assert ids(leaders_to_draw(LEDGER, {**CHECKPOINTS, "b": None}, 2)) == ["d"]


def test_zero_draws_none():
    assert leaders_to_draw(LEDGER, CHECKPOINTS, 0) == []
