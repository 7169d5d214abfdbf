"""How a trial ended, in one vocabulary shared by MLflow tags, the terminal and `best`.

completed: ran its whole epoch budget. converged: the plateau guard ended it, its metric no
longer rising (a good outcome, not a failure). pruned: ASHA stopped it for ranking low at a rung.
stopped: a failure guard stopped it (its verdict says which and why). failed: it raised, after
its retries. interrupted (MLflow only): the sweep stopped before it ended; --resume continues it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Status = Literal["running", "completed", "converged", "pruned", "stopped", "failed"]
FINISHED_WELL = ("completed", "converged", "pruned")  # trials whose weights may win


@dataclass
class TrialOutcome:
    trial_id: str
    config: dict[str, Any]
    status: Status = "running"
    reason: str = ""
    guard: str | None = None
    guard_is_failure: bool = False
    epochs: int = 0
    last_metric: float | None = None
    best_metric: float | None = None
    best_epoch: int | None = None
    evidence: dict[str, Any] = field(default_factory=dict)
    # ended before this process resumed the sweep: its record (MLflow) is final, leave it alone
    settled_earlier: bool = False


def is_better(value: float, best: float | None, mode: str) -> bool:
    if value != value:  # NaN never improves anything
        return False
    return best is None or (value > best if mode == "max" else value < best)


def record_result(outcome: TrialOutcome, result: dict[str, Any], metric: str, mode: str) -> None:
    """Fold one epoch's result into the outcome (epochs, latest and best metric)."""
    outcome.epochs = int(result.get("training_iteration", outcome.epochs))
    value = result.get(metric)
    if isinstance(value, (int, float)):
        outcome.last_metric = float(value)
        if is_better(float(value), outcome.best_metric, mode):
            outcome.best_metric, outcome.best_epoch = float(value), outcome.epochs


def finish(outcome: TrialOutcome, last_result: dict[str, Any], metric: str, max_epochs: int) -> None:
    """Classify a trial that ended without an error: completed, pruned or stopped by a guard."""
    guard = last_result.get("health/guard")
    if guard:
        outcome.guard = str(guard)
        outcome.guard_is_failure = bool(last_result.get("health/failure", True))
        outcome.status = "stopped" if outcome.guard_is_failure else "converged"
        outcome.reason = str(last_result.get("health/reason", ""))
        return
    best = _format(outcome.best_metric)
    if outcome.epochs >= max_epochs:
        outcome.status = "completed"
        outcome.reason = (
            f"ran its full budget of {max_epochs} epochs; best {metric} {best} "
            f"at epoch {outcome.best_epoch}"
        )
    else:
        outcome.status = "pruned"
        outcome.reason = (
            f"stopped by ASHA after epoch {outcome.epochs}: {metric} "
            f"{_format(outcome.last_metric)} ranked below its rung's cutoff"
        )


def fail(outcome: TrialOutcome, error_text: str) -> None:
    outcome.status = "failed"
    lines = [line.strip() for line in error_text.strip().splitlines() if line.strip()]
    outcome.reason = lines[-1] if lines else "the trial raised an error"


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class OutcomeLedger:
    """Per-trial outcomes of one sweep, updated by `LedgerCallback` as Tune reports."""

    def __init__(self, metric: str, mode: str, max_epochs: int):
        self.metric, self.mode, self.max_epochs = metric, mode, max_epochs
        self.trials: dict[str, TrialOutcome] = {}

    def outcome(self, trial_id: str, config: dict[str, Any]) -> TrialOutcome:
        return self.trials.setdefault(trial_id, TrialOutcome(trial_id, dict(config)))

    def counts(self) -> dict[str, int]:
        counts = {status: 0 for status in ("completed", "converged", "pruned", "stopped", "failed", "running")}
        for outcome in self.trials.values():
            counts[outcome.status] += 1
        return counts

    def best(self) -> TrialOutcome | None:
        finished = [
            o for o in self.trials.values()
            if o.best_metric is not None and o.status in FINISHED_WELL
        ]
        if not finished:
            return None
        pick = max if self.mode == "max" else min
        return pick(finished, key=lambda o: o.best_metric)
