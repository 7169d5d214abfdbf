"""leakage: a score too good to be true, as the inputs give away the labels."""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Optional

from pydantic import Field, field_validator

from orchestrator.health.base import (
    SHUFFLED_PROBE, Coverage, Guard, TrialFacts, Verdict, at_most, epoch_of, finite, fmt, fmt_list,
    latest_epoch,
)
from orchestrator.health.metric_scale import best_possible, worst_reference
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
      of that distance; or within `carrier_alone_margin` of it while shuffling the remaining
      modality (the carrier) instead drops the metric to chance (within `chance_margin`),
      although the first modality is intact and informative. Either way the carrier alone
      decides every sample, as a class-level attribute vector fed beside a bird's image does
      (published CUB-200 accuracy of a fine-tuned ResNet-50 is about 81-86%; such a model
      reaches 100%, and a wrong attribute vector overrules the right image). A healthy model
      that needs both inputs loses much more when either is shuffled, and one whose weaker
      modality still helps does not fall to chance without its stronger one;
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
    carrier_alone_margin: float = Field(
        0.25, ge=0, le=1,
        description="so does one within this fraction, when shuffling the remaining modality "
        "(the carrier) instead drops the metric to chance",
    )
    chance_margin: float = Field(
        0.1, ge=0, le=1,
        description="a metric within this fraction of that distance of its chance level is at "
        "chance",
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

    def _evidence(self, report: Mapping[str, Any], shuffled_key: str, trial: TrialFacts):
        """What one report shows for the probe `shuffled_key` (the target metric with one
        modality shuffled): None, or (carrier, best value, real, shuffled, carrier_shuffled)
        where carrier is "" when the probe alone nearly matches the target (strict margin), or
        the modality whose shuffle drops the metric to chance (loose margin)."""
        metric = trial.metric
        real, shuffled = finite(report.get(metric)), finite(report.get(shuffled_key))
        best = best_possible(metric, report, trial)
        worst = worst_reference(metric, report, trial)
        if real is None or shuffled is None or best is None or worst is None or best == worst:
            return None
        span = abs(best - worst)
        sign = 1.0 if best > worst else -1.0
        count = sample_count(metric, report)
        near = max(self.ceiling_margin * span, (1.0 / count) if count else 0.0)
        if not at_most(sign * (best - real), near):
            return None
        gap = sign * (real - shuffled)
        if at_most(gap, self.modality_alone_margin * span):
            return "", best, real, shuffled, None
        if not at_most(gap, self.carrier_alone_margin * span):
            return None
        name = metric.partition("/")[2]
        for key, value in report.items():
            match = SHUFFLED_PROBE.match(key)
            other = finite(value)
            if match is None or key == shuffled_key or match.group(2) != name or other is None:
                continue
            if at_most(sign * (other - worst), self.chance_margin * span):
                return match.group(1), best, real, shuffled, other
        return None

    def _modality_alone(self, history, trial: TrialFacts) -> Verdict | None:
        recent = history[-self.consecutive_reports:]
        name = trial.metric.partition("/")[2]
        for probe in recent[-1]:
            match = SHUFFLED_PROBE.match(probe)
            if match is None or match.group(2) != name:
                continue
            found = [self._evidence(report, probe, trial) for report in recent]
            if any(item is None for item in found):
                continue
            shuffled_modality = match.group(1)
            carrier, best, real, shuffled, carrier_shuffled = found[-1]
            others = [m.group(1) for key in recent[-1] if (m := SHUFFLED_PROBE.match(key))
                      and m.group(2) == name and m.group(1) != shuffled_modality]
            alone = (f"the {carrier} inputs" if carrier else
                     f"the {others[0]} inputs" if len(others) == 1 else "the other inputs")
            epoch = latest_epoch(history)
            evidence = {trial.metric: real, probe: shuffled, "best_possible": best}
            seen = (f"{trial.metric} was {fmt(real)} at epoch {epoch}, at its ceiling {fmt(best)}, "
                    f"and still {fmt(shuffled)} with the {shuffled_modality} inputs shuffled")
            if carrier:
                carrier_key = f"probe/{carrier}_shuffled/{name}"
                evidence[carrier_key] = carrier_shuffled
                chance = worst_reference(trial.metric, recent[-1], trial)
                seen += (f", but {fmt(carrier_shuffled)} (chance {fmt(chance)}) with the {carrier} "
                         f"inputs shuffled though the {shuffled_modality} inputs were intact")
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence=evidence,
                reason=(
                    f"{seen}{self._span(history)}: {alone} alone decide the samples and overrule "
                    f"the rest, which real data rarely allows, so they likely carry the label "
                    f"({WHAT_TO_CHECK})"
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

    def earliest_verdict(self) -> int:
        return self.consecutive_reports

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
