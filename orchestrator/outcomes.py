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
BEST_EPOCH = "best/epoch"  # the epoch of a trial's best value, beside best/<metric>


def best_metric_key(metric: str) -> str:
    """The key under which a trial's best value (the one its exported weights reach) is kept."""
    return f"best/{metric}"


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
    """Fold one epoch's result into the outcome (epochs, latest and best metric).

    The trial loop reports the best of the trial's whole history (`best/<metric>`, `best/epoch`):
    a trial resumed from a checkpoint reports only its later epochs here.
    """
    outcome.epochs = int(result.get("epoch", result.get("training_iteration", outcome.epochs)))
    value = result.get(metric)
    if isinstance(value, (int, float)):
        outcome.last_metric = float(value)
    best, best_epoch = result.get(best_metric_key(metric)), result.get(BEST_EPOCH)
    if isinstance(best, (int, float)) and isinstance(best_epoch, int):
        outcome.best_metric, outcome.best_epoch = float(best), best_epoch
    elif isinstance(value, (int, float)) and is_better(float(value), outcome.best_metric, mode):
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
    outcome.reason = error_summary(error_text)


def error_summary(error_text: str, limit: int = 200) -> str:
    """An error's last line (the exception, for a traceback), cut at the last sentence that
    ends within `limit` characters (Ray's errors for a dead worker run on for a paragraph)."""
    lines = [line.strip() for line in error_text.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else "the trial raised an error"
    if len(last) <= limit:
        return last
    cut = last.rfind(". ", 0, limit)
    return last[: cut + 1] if cut > limit // 4 else last[:limit] + "..."


def _format(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4f}"


class OutcomeLedger:
    """Per-trial outcomes of one sweep, updated by `LedgerCallback` as Tune reports.

    Trials are kept in the order they were first seen, which is the order they started (the
    ledger callback sees each trial start before anything else of it).
    """

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
        """The winner: the finished trial with the best metric; ties go to the earlier best
        epoch, then to the trial started first (as `orchestrate best` breaks them)."""
        leaders = self.leaders(1)
        return leaders[0] if leaders else None

    def leaders(self, count: int) -> list[TrialOutcome]:
        """The `count` best finished trials, the winner first (ranked as `best` ranks them)."""
        finished = [
            o for o in self.trials.values()
            if o.best_metric is not None and o.status in FINISHED_WELL
        ]
        started = {trial_id: order for order, trial_id in enumerate(self.trials)}
        sign = -1.0 if self.mode == "max" else 1.0
        return sorted(finished, key=lambda o: (
            sign * o.best_metric,
            o.best_epoch if o.best_epoch is not None else float("inf"),
            started[o.trial_id],
        ))[:count]

    def why_no_winner(self) -> str:
        """'3 stopped (2 leakage, 1 flat_line), 1 failed': how the trials ended, for a task
        none of whose trials finished well."""
        parts = []
        stopped = stopped_by_guard(self.trials.values())
        if stopped:
            total = sum(stopped.values())
            parts.append(f"{total} stopped (" + ", ".join(
                f"{count} {guard}" for guard, count in sorted(stopped.items())) + ")")
        counts = self.counts()
        parts += [f"{counts[status]} {status}" for status in ("failed", "running") if counts[status]]
        return ", ".join(parts) or "no trial ran"


def stopped_by_guard(outcomes) -> dict[str, int]:
    """How many of the outcomes each failure guard stopped."""
    guards: dict[str, int] = {}
    for outcome in outcomes:
        if outcome.status == "stopped":
            guards[outcome.guard or "?"] = guards.get(outcome.guard or "?", 0) + 1
    return guards
