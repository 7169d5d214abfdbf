"""plateau: the target metric stopped improving (a converged trial, not a failure)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from orchestrator.health.base import (
    Coverage, Guard, Verdict, below, finite, fmt, fmt_pair, latest_epoch, series,
)
from orchestrator.health.noise import line_fit


class PlateauGuard(Guard):
    """Stops a converged trial: its target metric gained too little in `patience` reports.

    Compares the best target value of the last `patience` reports with the best before them,
    in the trial's mode, and measures what the trend (a straight line through the last
    `patience` + 1 values) gained across them. The larger of the two must reach `min_delta`
    and, beyond it, the metric's own noise: `noise_sigmas` x the scatter of those values around
    the line (see noise.py), once there are 2 x `patience` reports (before that, the curve's
    early bends would read as noise and only `min_delta` counts). No verdict on a report that just set a new best by `min_delta` (the
    metric may still be rising), nor on one far below where the trend led (a crash is for the
    failure guards: a metric that crashed has not converged). On a small val set the metric wanders (R@1 over 200 images moves in steps of
    0.0025), and noise alone keeps setting new maxima; a gain inside that wander is no gain.
    Not a failure: the trial ends because more epochs would not help.

    Sees: the target metric. Cannot see: a metric that would rise again after a long flat
    stretch (a learning-rate schedule's late drop); raise `patience` for such schedules.
    """

    name: ClassVar[str] = "plateau"
    judges_learning: ClassVar[bool] = True
    patience: int = Field(4, ge=1, description="reports without real gain before stopping")
    min_delta: float = Field(
        0.005, ge=0, description="smallest absolute gain in the target metric that counts"
    )
    noise_sigmas: float = Field(
        2.0, ge=0, description="a gain must also exceed this many x the metric's epoch-to-epoch scatter"
    )

    def check(self, history, trial):
        found = series(history, trial.metric)
        if len(found) <= self.patience or found[-1][0] != len(history) - 1:
            return None
        values = [value for _, value in found]
        sign = 1.0 if trial.mode == "max" else -1.0
        best = max if trial.mode == "max" else min
        before, recent = best(values[: -self.patience]), best(values[-self.patience :])
        gain = sign * (recent - before)
        slope, noise = line_fit(values[-(self.patience + 1):]) or (0.0, 0.0)
        if len(values) < 2 * self.patience:
            noise = 0.0  # early on the curve is still steep: its bends are not noise
        rise = sign * slope * self.patience  # what the trend gained across the window
        required = max(self.min_delta, self.noise_sigmas * noise)
        if not below(max(gain, rise), required):
            return None
        if self._crashed(values, required, sign):
            return None  # a sudden fall is for the failure guards to judge, not convergence
        if not below(sign * (values[-1] - best(values[:-1])), self.min_delta):
            return None  # the latest report set a new best: judge again once that settles
        epoch = latest_epoch(history)
        gain_text, required_text = fmt_pair(max(gain, rise), required)
        if gain < rise:
            gain_text = f"{fmt(gain)} (its trend across them: {gain_text})"
        why = (f"within its epoch-to-epoch noise (scatter {fmt(noise)}, so a gain must reach "
               f"{fmt(self.noise_sigmas)} x that = {required_text})"
               if required > self.min_delta else f"< min_delta {required_text}")
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence={
                "best_before": before,
                "best_recent": recent,
                "gain": gain,
                "trend_gain": rise,
                "required_gain": required,
                "scatter": noise,
                "min_delta": self.min_delta,
                "patience": float(self.patience),
            },
            reason=(
                f"{trial.metric} plateaued: its best over the last {self.patience} reports up to "
                f"epoch {epoch} was {fmt(recent)} against {fmt(before)} before, a gain of "
                f"{gain_text}, {why}, so more epochs will not help"
            ),
            is_failure=False,
        )

    def _crashed(self, values: list[float], required: float, sign: float) -> bool:
        """Whether the latest value fell far (2 x the required gain) below where the trend of
        the reports before it led: a crash, not the wander or slow decline of convergence."""
        previous = values[-(self.patience + 1):-1]
        if len(previous) >= 2:
            count = len(previous)
            xs = [index - (count - 1) / 2 for index in range(count)]
            mean = sum(previous) / count
            slope = sum(x * (y - mean) for x, y in zip(xs, previous)) / sum(x * x for x in xs)
            expected = mean + slope * (count - (count - 1) / 2)
        else:
            expected = previous[-1]
        return below(2 * required, sign * (expected - values[-1]))

    def earliest_verdict(self) -> int:
        return self.patience + 1

    def coverage(self, report, trial):
        if finite(report.get(trial.metric)) is None:
            return Coverage(self.name, False, gaps=(f"{trial.metric} is not reported",))
        return Coverage(self.name, True, trial.metric)
