"""flat_line: the training loss does not move, or is exactly 0."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from orchestrator.health.base import Coverage, Guard, Verdict, epoch_of, finite, fmt, latest_epoch, series


class FlatLineGuard(Guard):
    """Stops a trial whose training loss does not move: the weights are not learning.

    Fires when the loss is identical (within `relative_tolerance`) over the last
    `window_reports` reports, or when it was exactly 0 on the last `zero_loss_reports` reports
    (from the start, or after collapsing there): a loss of exactly 0 gives no gradient at all.
    Sees: `train/loss`. Cannot see: a loss that moves while the model learns nothing useful
    (the metric guards see that).
    """

    name: ClassVar[str] = "flat_line"
    loss_key: str = Field("train/loss", description="reported key of the training loss")
    window_reports: int = Field(
        3, ge=2, description="consecutive reports the loss must stay unchanged over"
    )
    relative_tolerance: float = Field(
        1e-6,
        ge=0,
        description="max spread (max - min) over the window, relative to the largest |loss|",
    )
    zero_loss_reports: int = Field(
        2, ge=1, description="consecutive latest reports of a loss of exactly 0 that suffice"
    )

    def check(self, history, trial):
        found = series(history, self.loss_key)
        if not found or found[-1][0] != len(history) - 1:
            return None  # the latest report has no loss to judge
        epoch = latest_epoch(history)
        values = [value for _, value in found]
        latest = values[-self.zero_loss_reports :]
        if len(latest) == self.zero_loss_reports and all(value == 0.0 for value in latest):
            zeros = next(
                (i for i, value in enumerate(reversed(values)) if value != 0.0), len(values))
            since = "since the first report" if zeros == len(values) else f"on the last {zeros} reports"
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence={self.loss_key: 0.0, "reports": float(zeros)},
                reason=(
                    f"{self.loss_key} has been exactly 0 {since}, up to epoch {epoch}: it gives "
                    "no gradient signal, so nothing more is learnt (a loss written wrong, e.g. a "
                    "statistic the model can drive to 0, a tensor compared with itself, or detached)"
                ),
                is_failure=True,
            )
        if len(values) < self.window_reports:
            return None
        window = values[-self.window_reports :]
        spread = max(window) - min(window)
        if spread > self.relative_tolerance * max(abs(v) for v in window):
            return None
        first_epoch = epoch_of(history, found[-self.window_reports][0])
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence={
                self.loss_key: window[-1],
                "spread": spread,
                "window_reports": float(self.window_reports),
                "relative_tolerance": self.relative_tolerance,
            },
            reason=(
                f"{self.loss_key} stayed at {fmt(window[-1])} from epoch {first_epoch} to "
                f"{epoch} ({self.window_reports} reports, spread {spread:.3g}): the weights are "
                "not changing (learning rate 0, every parameter frozen, a detached loss, or "
                "units that output 0 for every input and so pass no gradient)"
            ),
            is_failure=True,
        )

    def earliest_verdict(self) -> int:
        return min(self.window_reports, self.zero_loss_reports)

    def coverage(self, report, trial):
        if finite(report.get(self.loss_key)) is None:
            return Coverage(self.name, False, gaps=(f"no {self.loss_key} reported",))
        return Coverage(self.name, True, self.loss_key)
