"""non_finite: NaN or +-Inf in any reported number."""

from __future__ import annotations

import math
from typing import ClassVar

from orchestrator.health.base import Coverage, Guard, Verdict, latest_epoch, number


class NonFiniteGuard(Guard):
    """Stops a trial whose latest report holds NaN or +-Inf in any numeric value.

    A loss, metric or probe that is not finite means the numbers overflowed or divided by zero;
    nothing after it can be trusted. Keys under `health/` (the guards' own output) are skipped.
    Sees: every number the trial reports. Cannot see: a value that is finite but wrong.
    """

    name: ClassVar[str] = "non_finite"

    def check(self, history, trial):
        if not history:
            return None
        bad = {
            key: found
            for key, value in history[-1].items()
            if not key.startswith("health/")
            and (found := number(value)) is not None
            and not math.isfinite(found)
        }
        if not bad:
            return None
        epoch = latest_epoch(history)
        key, value = next(iter(bad.items()))
        others = f" (and {len(bad) - 1} other values)" if len(bad) > 1 else ""
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence=bad,
            reason=(
                f"{key} was {value}{others} at epoch {epoch}: the computation overflowed or "
                "divided by zero (try a lower learning rate, gradient clipping or a larger "
                "temperature)"
            ),
            is_failure=True,
        )

    def coverage(self, report, trial):
        count = sum(number(value) is not None for value in report.values())
        return Coverage(self.name, count > 0, f"all {count} reported numbers")
