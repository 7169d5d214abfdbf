"""chance_level: after a warm-up, the validation metrics are no better than chance."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Mapping, Sequence

from pydantic import Field

from orchestrator.health.base import (
    Coverage, Guard, TrialFacts, Verdict, at_most, epoch_of, finite, fmt, fmt_list,
    higher_is_better, latest_epoch,
)
from orchestrator.health.metric_scale import CHANCE_AUROC, is_auroc, value_range
from orchestrator.health.noise import sample_count, standard_error


@dataclass(frozen=True)
class _Finding:
    key: str
    evidence: dict[str, float]
    seen: str  # what the numbers show
    meaning: str  # what that says about the model


class ChanceLevelGuard(Guard):
    """Stops a trial whose validation metrics are still at chance level after a warm-up.

    Judged over the last `window_reports` reports once `warmup_reports` reports are past (the
    defaults judge reports 2-3 first, so the earliest verdict is at report 3). A metric is at
    chance when its mean over the window is within a margin of its chance level and its latest
    value is within twice that margin (a model that just started to learn is left alone):
    - `val/<m>` beside `val/chance/<m>`: chance as the task reports it (for a target metric
      with mode "min" the direction flips). A non-target one is skipped when an AUROC of the
      same report is clearly above chance: the scores carry signal, and a secondary metric of
      the same scores (a low-prevalence AUPRC) can sit within its noise of chance while they do;
    - `val/*auroc*`: chance 0.5. An AUROC wanders on both sides of 0.5 when the scores carry no
      signal, so one below 0.5 is at chance too; only one below 0.5 by twice the margin on every
      report of the window is called inverted (the scores rank negatives first);
    - `val/*accuracy` beside a majority-class rate (`val/<prefix>majority_rate`, else
      `val/majority_rate`): 90% accuracy on 90% majority is chance. Balanced accuracy is
      skipped (its chance level is 1 / classes), and so is a non-target accuracy when an AUROC
      of the same report is clearly above chance (the scores rank well; only the 0.5 threshold
      is off).

    The margin is `noise_sigmas` standard errors of the metric at chance, over the window's
    mean, when the task reports its val set's size (`val/samples`) or the metric's standard
    error (`val/stderr/<m>`): about 0.04 for an AUROC on 200 samples, 0.006 on 10,000 (see
    noise.py). Without them it is a fixed margin: `relative_tolerance` x chance, `auroc_band`,
    `majority_tolerance`. Either way it is capped at `max_headroom_fraction` of the distance from
    chance to the metric's best value, so a weak but real signal on a tiny val set is not chance.

    Sees: metrics with a chance level (reported, an AUROC's 0.5, a majority rate). Cannot see:
    a metric without one, or a model that beats chance by less than the margin's noise.
    """

    name: ClassVar[str] = "chance_level"
    judges_learning: ClassVar[bool] = True
    warmup_reports: int = Field(
        1, ge=0, description="reports before this guard judges (early epochs may sit at chance)"
    )
    window_reports: int = Field(
        2, ge=1, description="latest reports whose mean is judged (noise averages out)"
    )
    noise_sigmas: float = Field(
        2.0, gt=0, description="the margin, in standard errors, when the val set's size is known"
    )
    relative_tolerance: float = Field(
        0.5, ge=0, description="without it: a metric within (1 + this) x its chance level is at chance"
    )
    max_headroom_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description="cap on the margin, as a fraction of the gap from chance to the best value",
    )
    auroc_band: float = Field(
        0.05, ge=0, le=0.5, description="without it: an AUROC within this of 0.5 is at chance"
    )
    majority_tolerance: float = Field(
        0.01, ge=0, description="without it: an accuracy <= majority-class rate + this is at chance"
    )

    def _margin(self, key: str, report: Mapping[str, Any], trial: TrialFacts, chance: float,
                fallback: float, higher: bool) -> float:
        """How far above chance (below, for lower-is-better) a mean still counts as chance."""
        error = standard_error(key, report, trial, at=chance)
        margin = fallback if error is None else self.noise_sigmas * error / math.sqrt(self.window_reports)
        low, high = value_range(key, report, trial)
        best = high if higher else low
        if math.isfinite(best):
            margin = min(margin, self.max_headroom_fraction * abs(best - chance))
        return margin

    def _judge(self, key: str, window: Sequence[Mapping[str, Any]], trial: TrialFacts,
               chance_of, fallback: float, higher: bool):
        """(mean, chance, margin, values) when `key` is at chance over the window, else None."""
        values = [finite(report.get(key)) for report in window]
        chances = [chance_of(report) for report in window]
        if any(v is None for v in values) or any(c is None for c in chances):
            return None
        margins = [self._margin(key, report, trial, chance, fallback, higher)
                   for report, chance in zip(window, chances)]
        sign = 1.0 if higher else -1.0
        mean = sum(values) / len(values)
        chance, margin = sum(chances) / len(chances), sum(margins) / len(margins)
        if at_most(sign * (mean - chance), margin) and at_most(sign * (values[-1] - chances[-1]), 2 * margins[-1]):
            return mean, chance, margin, values
        return None

    def _aurocs(self, latest: Mapping[str, Any], trial: TrialFacts) -> dict[str, float]:
        """The report's higher-is-better val AUROCs, each with its margin at chance."""
        return {
            key: self._margin(key, latest, trial, CHANCE_AUROC, self.auroc_band, True)
            for key in latest
            if key.startswith("val/") and not key.startswith("val/chance/") and is_auroc(key)
            and finite(latest.get(key)) is not None and higher_is_better(key, trial)
        }

    def _findings(self, window, trial: TrialFacts, span: str):
        latest = window[-1]
        found: list[_Finding] = []
        auroc_margins = self._aurocs(latest, trial)
        # Scores that rank positives above negatives beyond the noise carry signal, whatever a
        # secondary metric of the same scores says: a low-prevalence AUPRC or a badly thresholded
        # accuracy of a weak model sits within its noise of chance while the AUROC does not.
        ranks_well = any(finite(latest.get(key)) > CHANCE_AUROC + margin
                         for key, margin in auroc_margins.items())
        for key in latest:
            if not key.startswith("val/chance/"):
                continue
            metric_key = "val/" + key[len("val/chance/"):]
            if is_auroc(metric_key) or finite(latest.get(metric_key)) is None:
                continue
            if metric_key != trial.metric and ranks_well:
                continue
            higher = higher_is_better(metric_key, trial)
            judged = self._judge(
                metric_key, window, trial, lambda report, k=key: finite(report.get(k)),
                self.relative_tolerance * abs(finite(latest[key]) or 0.0), higher)
            if judged:
                mean, chance, margin, values = judged
                found.append(_Finding(metric_key, {metric_key: values[-1], key: chance, "mean": mean,
                                                   "margin": margin},
                                      f"{_mean_text(metric_key, mean, values, span)}, within "
                                      f"{fmt(margin)} of its chance level {fmt(chance)}",
                                      "the model predicts no better than chance"))
        for key in auroc_margins:
            judged = self._judge(key, window, trial, lambda report: CHANCE_AUROC, self.auroc_band, True)
            if not judged:
                continue
            mean, chance, margin, values = judged
            if all(value < CHANCE_AUROC - 2 * margin for value in values):
                seen = (f"{_mean_text(key, mean, values, span)}, below 0.5 by more than "
                        f"{fmt(2 * margin)} on every report")
                meaning = ("the scores rank negatives above positives (a flipped sign of the "
                           "score or of the labels?)")
            else:
                seen = (f"{_mean_text(key, mean, values, span)}, not above chance 0.5 by more "
                        f"than {fmt(margin)}")
                meaning = ("the scores carry no signal about the labels (an AUROC wanders on "
                           "both sides of 0.5 when they carry none)")
            found.append(_Finding(key, {key: values[-1], "mean": mean, "margin": margin}, seen, meaning))
        for key in latest:
            if key.startswith("val/chance/") or "balanced" in key.lower():
                continue
            if not fnmatchcase(key, "val/*accuracy") or finite(latest.get(key)) is None:
                continue
            if key != trial.metric and ranks_well:
                continue
            rate_key = key[: -len("accuracy")] + "majority_rate"
            if finite(latest.get(rate_key)) is None:
                rate_key = "val/majority_rate"
            judged = self._judge(key, window, trial, lambda report: finite(report.get(rate_key)),
                                 self.majority_tolerance, True)
            if judged:
                mean, rate, margin, values = judged
                found.append(_Finding(key, {key: values[-1], rate_key: rate, "mean": mean,
                                            "margin": margin},
                                      f"{_mean_text(key, mean, values, span)}, not above the "
                                      f"majority-class rate {fmt(rate)} by more than {fmt(margin)}",
                                      "the model predicts no better than always answering the "
                                      "majority class"))
        found.sort(key=lambda finding: finding.key != trial.metric)  # stable: target first
        return found

    def check(self, history, trial):
        if len(history) < self.warmup_reports + self.window_reports:
            return None
        window = history[-self.window_reports:]
        first, last = epoch_of(history, len(history) - self.window_reports), latest_epoch(history)
        span = f"epoch {last}" if first == last else f"epochs {first}-{last}"
        findings = self._findings(window, trial, span)
        if not findings:
            return None
        finding = findings[0]
        count = sample_count(finding.key, window[-1])
        noise = (f"margin: {fmt(self.noise_sigmas)} standard errors on {fmt(count)} val samples"
                 if count is not None else
                 "margin: the task's standard error"
                 if finite(window[-1].get(_stderr_key(finding.key))) is not None
                 else "a fixed margin: the task reports no val/samples")
        warmup = f", after a {self.warmup_reports}-report warm-up" if self.warmup_reports else ""
        return Verdict(
            guard=self.name,
            epoch=last,
            evidence=finding.evidence,
            reason=(
                f"{finding.seen} ({noise}{warmup}): {finding.meaning}; check the labels, the "
                "pairing of inputs and the learning rate"
            ),
            is_failure=True,
        )

    def earliest_verdict(self) -> int:
        return self.warmup_reports + self.window_reports

    def coverage(self, report, trial):
        watched = [key[len("val/chance/"):] for key in report
                   if key.startswith("val/chance/") and finite(report.get("val/" + key[len("val/chance/"):])) is not None]
        watched += [key[4:] for key in report if key.startswith("val/") and not key.startswith("val/chance/")
                    and is_auroc(key) and finite(report.get(key)) is not None]
        if finite(report.get("val/majority_rate")) is not None:
            watched += [key[4:] + " vs majority_rate" for key in report
                        if fnmatchcase(key, "val/*accuracy") and "balanced" not in key]
        watched = list(dict.fromkeys(watched))
        if not watched:
            return Coverage(self.name, False, gaps=(
                "no val/chance/<metric>, AUROC or accuracy beside a majority_rate reported",))
        has_noise = sample_count(trial.metric, report) is not None or \
            finite(report.get(_stderr_key(trial.metric))) is not None
        gaps = () if has_noise else (
            "no val/samples or val/stderr/<metric>: fixed margins, not the val set's own noise",)
        return Coverage(self.name, True, ", ".join(watched), gaps)


def _stderr_key(key: str) -> str:
    split, _, name = key.partition("/")
    return f"{split}/stderr/{name}"


def _mean_text(key: str, mean: float, values: Sequence[float], span: str) -> str:
    if len(values) == 1:
        return f"{key} was {fmt(values[0])} at {span}"
    return f"{key} averaged {fmt(mean)} over {span} ({fmt_list(values)})"
