"""impossible_value: a value outside the range the task declares possible."""

from __future__ import annotations

import math
from fnmatch import fnmatchcase
from typing import ClassVar

from pydantic import Field

from orchestrator.health.base import Coverage, Guard, Verdict, finite, fmt, latest_epoch


class ImpossibleValueGuard(Guard):
    """Stops a trial that reports a value outside the task's declared `value_bounds`.

    `value_bounds` maps an fnmatch pattern of the full reported key ("train/loss", "val/*_r1")
    to (lowest, highest) possible value; a value outside every matching range cannot happen in
    correct code (an InfoNCE below 0, a recall above 1), so the loss or metric is written wrong.
    Sees: the keys the task bounds. Cannot see: a key without a declared bound (the preflight
    lists bound patterns that match no reported key: a misspelt pattern checks nothing).
    """

    name: ClassVar[str] = "impossible_value"
    tolerance: float = Field(
        1e-4,
        ge=0,
        description=(
            "slack beyond each bound, scaled by max(1, |bound|), for floating-point round-off "
            "(float16 round-off on a loss near 0 is ~1e-4)"
        ),
    )

    def check(self, history, trial):
        if not history or not trial.value_bounds:
            return None
        for key, value in history[-1].items():
            found = finite(value)
            if found is None:
                continue
            for pattern, bounds in trial.value_bounds.items():
                if not fnmatchcase(key, pattern):
                    continue
                low, high = (-math.inf if b is None else float(b) for b in bounds)
                if found < low - self.tolerance * max(1.0, abs(low)):
                    side, bound, word = "below", low, "floor"
                elif found > high + self.tolerance * max(1.0, abs(high)):
                    side, bound, word = "above", high, "ceiling"
                else:
                    continue
                epoch = latest_epoch(history)
                kind = "loss" if key.startswith("train/") else "value"
                return Verdict(
                    guard=self.name,
                    epoch=epoch,
                    evidence={key: found, "low": low, "high": high},
                    reason=(
                        f"{key} was {fmt(found)} at epoch {epoch}, {side} its {word} "
                        f"{fmt(bound)}: a {kind} declared in [{fmt(low)}, {fmt(high)}] cannot "
                        f"be {side} it, so the code computing {key} is wrong"
                    ),
                    is_failure=True,
                )
        return None

    def coverage(self, report, trial):
        patterns = dict(trial.value_bounds or {})
        numeric = [key for key, value in report.items() if finite(value) is not None]
        bounded = [key for key in numeric if any(fnmatchcase(key, p) for p in patterns)]
        # test/ keys are evaluated after the sweep, never reported by a trial
        unused = sorted(p for p in patterns if not p.startswith("test/")
                        and not any(fnmatchcase(key, p) for key in numeric))
        gaps = (f"bounds that match no key the preflight saw (misspelt?): {', '.join(unused)}",) if unused else ()
        if not bounded:
            return Coverage(self.name, False, gaps=(
                "the task declares no value_bounds that match its reported keys", *gaps))
        return Coverage(self.name, True, f"{len(bounded)} of {len(numeric)} keys bounded", gaps)
