"""leakage: a score too good to be true, as the inputs give away the labels."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional

from pydantic import Field, field_validator

from orchestrator.health.base import (
    Coverage, Guard, TrialFacts, Verdict, at_most, below, epoch_of, finite, fmt, fmt_list,
    latest_epoch,
)
from orchestrator.health.metric_scale import best_possible, worst_reference
from orchestrator.health.modality_ignored import SHUFFLED_PROBE
from orchestrator.health.noise import sample_count

WHAT_TO_CHECK = (
    "check for inputs that carry the label (class-level attributes or metadata fed as inputs), "
    "val samples drawn from the training set, and samples duplicated across splits"
)


class LeakageGuard(Guard):
    """Stops a trial whose score is too good to be true: its inputs give the labels away.

    A failure whose trials are never winners. Two kinds of evidence, each on
    `consecutive_reports` reports in a row:
    - **one modality alone reaches the ceiling**: the target metric is at its best possible
      value (within `ceiling_margin` of the distance from chance to it, or one sample's worth
      when the task reports `val/samples`), and with another modality shuffled
      (`probe/<modality>_shuffled/<metric>`) the metric is still within `modality_alone_margin`
      of that distance: the remaining modality alone decides every sample, as a class-level
      attribute vector fed beside a bird's image does (published CUB-200 accuracy of a
      fine-tuned ResNet-50 is about 81-86%; such a model reaches 100%). A healthy model that
      needs both inputs loses much more when one is shuffled;
    - **beyond what is plausible**: a reported metric above the value the task declares
      plausible for it (`plausible_max` on the task, e.g. from the best published results on
      its real dataset; `plausible_max` here overrides it per key, null removes it).

    Sees: the target metric's ceiling (declared in value_bounds, or 1 for a metric named like a
    fraction), its shuffled-modality probes, and declared plausible maxima. Cannot see: a leak
    that still needs every modality (val drawn from train, memorised: only plausible_max can
    tell), or a leak that lifts the metric without reaching the ceiling or the plausible line.
    Data-level leaks a task's check_data finds are refused before Ray starts.
    """

    name: ClassVar[str] = "leakage"
    consecutive_reports: int = Field(
        2, ge=1, description="reports in a row, ending at the latest, that must show the evidence"
    )
    ceiling_margin: float = Field(
        0.005, ge=0, le=1,
        description="within this fraction of the distance from chance to the best value is at "
        "the ceiling",
    )
    modality_alone_margin: float = Field(
        0.02, ge=0, le=1,
        description="a shuffled-modality metric within this fraction of that distance of the "
        "real one nearly matches it",
    )
    plausible_max: dict[str, Optional[float]] = Field(
        default_factory=dict,
        description="reported key -> the highest plausible value; overrides the task's "
        "plausible_max for that key (null removes it)",
    )

    @field_validator("plausible_max")
    @classmethod
    def _keys_are_reported_keys(cls, value: dict[str, Optional[float]]) -> dict[str, Optional[float]]:
        for key in value:
            if not key.startswith(("val/", "train/", "probe/")):
                raise ValueError(f"plausible_max key {key!r} must be a reported key such as val/accuracy")
        return value

    def limits(self, trial: TrialFacts) -> dict[str, float]:
        """The plausible maxima in force: the task's, overridden by this guard's."""
        merged: dict[str, Any] = {**(trial.plausible_max or {}), **self.plausible_max}
        return {key: float(value) for key, value in merged.items() if value is not None}

    def _alone_at_ceiling(self, report: Mapping[str, Any], probe: str, trial: TrialFacts):
        """(best value, real, shuffled) when the target and the shuffled probe both sit at the
        ceiling in this report, else None."""
        metric = trial.metric
        real, shuffled = finite(report.get(metric)), finite(report.get(probe))
        best = best_possible(metric, report, trial)
        worst = worst_reference(metric, report, trial)
        if real is None or shuffled is None or best is None or worst is None or best == worst:
            return None
        span = abs(best - worst)
        count = sample_count(metric, report)
        near = max(self.ceiling_margin * span, (1.0 / count) if count else 0.0)
        sign = 1.0 if best > worst else -1.0
        if at_most(sign * (best - real), near) and at_most(sign * (real - shuffled),
                                                           self.modality_alone_margin * span):
            return best, real, shuffled
        return None

    def _modality_alone(self, history, trial: TrialFacts) -> Verdict | None:
        recent = history[-self.consecutive_reports:]
        name = trial.metric.partition("/")[2]
        for probe in recent[-1]:
            match = SHUFFLED_PROBE.match(probe)
            if match is None or match.group(2) != name:
                continue
            found = [self._alone_at_ceiling(report, probe, trial) for report in recent]
            if any(item is None for item in found):
                continue
            shuffled_modality = match.group(1)
            others = [m.group(1) for key in recent[-1] if (m := SHUFFLED_PROBE.match(key))
                      and m.group(2) == name and m.group(1) != shuffled_modality]
            alone = f"the {others[0]} inputs" if len(others) == 1 else "the other inputs"
            best, real, shuffled = found[-1]
            epoch = latest_epoch(history)
            span = self._span(history)
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence={trial.metric: real, probe: shuffled, "best_possible": best},
                reason=(
                    f"{trial.metric} was {fmt(real)} at epoch {epoch}, at its ceiling "
                    f"{fmt(best)}, and still {fmt(shuffled)} with the {shuffled_modality} inputs "
                    f"shuffled{span}: {alone} alone decide every sample, which real "
                    f"data rarely allows, so they likely carry the label ({WHAT_TO_CHECK})"
                ),
                is_failure=True,
            )
        return None

    def _implausible(self, history, trial: TrialFacts) -> Verdict | None:
        recent = history[-self.consecutive_reports:]
        for key, limit in self.limits(trial).items():
            values = [finite(report.get(key)) for report in recent]
            if any(value is None for value in values) or not all(
                    not at_most(value, limit) for value in values):
                continue
            epoch = latest_epoch(history)
            shown = (f"{fmt(values[-1])} at epoch {epoch}" if len(values) == 1 else
                     f"{fmt_list(values)} over epochs {epoch_of(history, len(history) - len(values))}-{epoch}")
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence={key: values[-1], "plausible_max": limit},
                reason=(
                    f"{key} was {shown}, above {fmt(limit)}, the most this task declares "
                    f"plausible for it (plausible_max): a score beyond the best published "
                    f"results usually means the model sees the answer ({WHAT_TO_CHECK})"
                ),
                is_failure=True,
            )
        return None

    def _span(self, history) -> str:
        if self.consecutive_reports < 2:
            return ""
        return f", on {self.consecutive_reports} reports in a row"

    def check(self, history, trial):
        if len(history) < self.consecutive_reports:
            return None
        return self._modality_alone(history, trial) or self._implausible(history, trial)

    def coverage(self, report, trial):
        watches, gaps = [], []
        name = trial.metric.partition("/")[2]
        alone = [m.group(1) for key in report if (m := SHUFFLED_PROBE.match(key)) and m.group(2) == name]
        if not alone:
            gaps.append(f"one modality alone at the ceiling: no probe/<modality>_shuffled/{name}")
        elif best_possible(trial.metric, report, trial) is None:
            gaps.append(f"one modality alone at the ceiling: {trial.metric} has no declared "
                        "best value (value_bounds)")
        else:
            watches.append(f"{trial.metric} with {', '.join(alone)} shuffled")
        limits = self.limits(trial)
        if limits:
            watches.append("plausible_max " + ", ".join(f"{k} {fmt(v)}" for k, v in limits.items()))
            gaps += [f"plausible_max names {key}, which is not reported" for key in limits
                     if finite(report.get(key)) is None]
        else:
            gaps.append("beyond plausible: no plausible_max declared by the task or the space")
        return Coverage(self.name, bool(watches), "; ".join(watches), tuple(gaps))
