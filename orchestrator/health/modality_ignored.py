"""modality_ignored: the metric barely moves when one input modality is shuffled."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

from pydantic import Field

from orchestrator.health.base import (
    SHUFFLED_PROBE, Coverage, Guard, TrialFacts, Verdict, at_most, below, epoch_of, finite, fmt, fmt_pair,
    higher_is_better, latest_epoch,
)
from orchestrator.health.metric_scale import best_possible, chance_level
from orchestrator.health.noise import standard_error



@dataclass(frozen=True)
class _Gain:
    """What one modality adds to a metric on one report."""

    real: float
    shuffled: float
    gain: float
    required: float
    basis: str  # why `required` is what it is, for the reason


class ModalityIgnoredGuard(Guard):
    """Stops a trial whose metric does not need one of its input modalities.

    For each probe `probe/<modality>_shuffled/<m>` beside `val/<m>`: the gain is the real
    metric minus the metric with that modality's inputs shuffled across the val set (metrics
    are higher-is-better, except the target metric under mode "min"). The modality counts as
    used when the gain reaches the smallest of
    - a share `min_share` of what the model achieves above chance (`val/chance/<m>`, 0.5 for
      an AUROC, else 0 for a higher-is-better metric): a weak model's small gains still count;
    - the same share of what the shuffled model still misses of the metric's best value (its
      error): near the ceiling, a modality that halves the error counts though the gain is
      small (AUROC 0.99 against 0.98);
    - the noise of the gain: `noise_sigmas` standard errors of the real and the shuffled metric
      when the task reports its val set's size (`val/samples`) or the metric's standard error,
      else `min_absolute_gain`. A fixed gain is too much to ask of 10,000 samples and too
      little of 200 (see noise.py).

    A modality is ignored only when the evidence persists: the gain is under what is required
    on the latest report, and on average over the last `window_reports` reports, after a
    `warmup_reports` warm-up (the defaults judge reports 4-5 first, so the earliest verdict is
    at report 5). A healthy model may learn one modality first and the other only epochs later
    (a camera gain of 0.007 at epoch 3 that is 0.11 by epoch 8): the warm-up leaves it the
    time, the other guards meanwhile stop a model broken as a whole. A model at chance is left
    to chance_level (nothing it ignores can be told from noise). When several modalities are
    ignored, the reason names the one furthest under its requirement first.

    Sees: the modalities the task probes with `<modality>_shuffled/<metric>`. Cannot see: a
    modality without such a probe (the preflight lists them), or one the model uses only
    through inputs the shuffle leaves in place.
    """

    name: ClassVar[str] = "modality_ignored"
    judges_learning: ClassVar[bool] = True
    warmup_reports: int = Field(
        3, ge=0, description="reports before this guard judges (a model may learn one input first)"
    )
    window_reports: int = Field(
        2, ge=1, description="latest reports the gain must be short on average over"
    )
    min_share: float = Field(
        0.05, ge=0, le=1, description="a gain of this share of the above-chance metric, or of the "
        "shuffled model's error, is enough"
    )
    noise_sigmas: float = Field(
        2.0, gt=0, description="so is a gain of this many standard errors (val set size known)"
    )
    min_absolute_gain: float = Field(
        0.02, ge=0, description="so is this gain, when the val set's size is not reported"
    )

    def _gain(self, report: Mapping[str, Any], probe: str, metric_key: str,
              trial: TrialFacts) -> _Gain | None:
        real, shuffled = finite(report.get(metric_key)), finite(report.get(probe))
        if real is None or shuffled is None:
            return None
        higher = higher_is_better(metric_key, trial)
        sign = 1.0 if higher else -1.0
        gain = sign * (real - shuffled)
        options = []
        chance = chance_level(metric_key, report)
        if chance is not None or higher:  # without a chance level, 0 is the floor of a score
            above_chance = sign * (real - (chance if chance is not None else 0.0))
            options.append((self.min_share * max(above_chance, 0.0),
                            f"{fmt(100 * self.min_share)}% of its {fmt(above_chance)} above "
                            + ("chance" if chance is not None else "0")))
        best = best_possible(metric_key, report, trial)
        if best is not None:
            error = sign * (best - shuffled)
            options.append((self.min_share * max(error, 0.0),
                            f"{fmt(100 * self.min_share)}% of the shuffled model's error "
                            f"{fmt(error)}"))
        errors = [standard_error(metric_key, report, trial, at=value) for value in (real, shuffled)]
        if None not in errors:
            noise = self.noise_sigmas * math.hypot(*errors)
            options.append((noise, f"{fmt(self.noise_sigmas)} standard errors of the val set"))
        else:
            options.append((self.min_absolute_gain, "min_absolute_gain"))
        required, basis = min(options, key=lambda option: option[0])
        return _Gain(real, shuffled, gain, required, basis)

    def _at_chance(self, report: Mapping[str, Any], metric_key: str, trial: TrialFacts) -> bool:
        """Whether the real metric is within noise of chance: nothing to compare then."""
        chance = chance_level(metric_key, report)
        real = finite(report.get(metric_key))
        if chance is None or real is None:
            return False
        sign = 1.0 if higher_is_better(metric_key, trial) else -1.0
        error = standard_error(metric_key, report, trial, at=chance)
        margin = self.noise_sigmas * error if error is not None else 0.0
        return at_most(sign * (real - chance), margin)

    def check(self, history, trial):
        if len(history) < self.warmup_reports + self.window_reports:
            return None
        window = history[-self.window_reports:]
        ignored = []
        for probe in window[-1]:
            match = SHUFFLED_PROBE.match(probe)
            if match is None:
                continue
            modality, name = match.groups()
            metric_key = f"val/{name}"
            gains = [self._gain(report, probe, metric_key, trial) for report in window]
            if any(gain is None for gain in gains) or self._at_chance(window[-1], metric_key, trial):
                continue
            shortfall = sum(gain.gain - gain.required for gain in gains) / len(gains)
            latest = gains[-1]
            if below(latest.gain, latest.required) and below(shortfall, 0.0):
                ignored.append((shortfall / max(latest.required, 1e-12), modality, probe, metric_key, gains))
        if not ignored:
            return None
        ignored.sort(key=lambda item: (item[0], item[1]))  # furthest under its requirement first
        _, modality, probe, metric_key, gains = ignored[0]
        latest = gains[-1]
        epoch = latest_epoch(history)
        gain_text, required_text = fmt_pair(latest.gain, latest.required)
        earlier = ""
        if len(gains) > 1:
            first = epoch_of(history, len(history) - len(gains))
            earlier = (f"; its gain averaged {fmt(sum(g.gain for g in gains) / len(gains))} over "
                       f"epochs {first}-{epoch}")
        others = "".join(f", and its {name} input too" for _, name, *_ in ignored[1:])
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence={metric_key: latest.real, probe: latest.shuffled, "gain": latest.gain,
                      "required_gain": latest.required},
            reason=(
                f"the model ignores its {modality} input{others}: {metric_key} was "
                f"{fmt(latest.real)} at epoch {epoch} and {fmt(latest.shuffled)} with the "
                f"{modality} inputs shuffled, a gain of {gain_text} < {required_text} "
                f"({latest.basis}){earlier} (check that the {modality} encoder's output reaches "
                "the loss)"
            ),
            is_failure=True,
        )

    def earliest_verdict(self) -> int:
        return self.warmup_reports + self.window_reports

    def coverage(self, report, trial):
        watched, gaps = [], []
        for probe in report:
            match = SHUFFLED_PROBE.match(probe)
            if match is None or finite(report.get(probe)) is None:
                continue
            modality, name = match.groups()
            if finite(report.get(f"val/{name}")) is None:
                gaps.append(f"{probe} has no val/{name} beside it (misspelt?)")
            else:
                watched.append(f"{modality} ({name})")
        if not watched:
            return Coverage(self.name, False, gaps=tuple(gaps) or (
                "no probe/<modality>_shuffled/<metric> reported",))
        return Coverage(self.name, True, ", ".join(watched), tuple(gaps))
