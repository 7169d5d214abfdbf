"""Run-health guards: pure checks over a trial's reported history that stop doomed trials early.

A history is a list with one dict per report (epoch), oldest first, holding the keys the trial
loop reported (`train/loss`, `val/mean_r1`, `val/chance/mean_r1`, `probe/image/offdiag_cosine`,
...; see tasks/base.py). The report's epoch is its `training_iteration`, else its `epoch`, else
its 1-based position. Values that are not real numbers (strings, None, bools, nested dicts) are
ignored by every guard.

Each guard is one small, stateless class in the manner of Optuna's pruners: its thresholds are
its (documented, validated) fields and `check` holds its logic. The guard classes are also the
sub-models of `HealthConfig`, so a search space's `health:` section sets them directly:

    health:
      plateau: {patience: 6, min_delta: 0.01}
      chance_level: {enabled: false}

Every guard judges the trial *now*, at the latest report, using earlier reports only as context
(a window, a warm-up, a patience): `check_health` is called after every report, so a failure is
caught at the report where its condition first holds, and an old, recovered blip never stops a
trial later. The verdict's epoch is the report that was judged.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import Any, ClassVar, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

# probe/<modality>/offdiag_cosine or probe/<modality>/dim_std
_EMBEDDING_PROBE = re.compile(r"^probe/([^/]+)/offdiag_cosine$|^probe/([^/]+)/dim_std$")
# probe/<modality>_shuffled/<metric>
_SHUFFLED_PROBE = re.compile(r"^probe/([^/]+)_shuffled/(.+)$")

History = Sequence[Mapping[str, Any]]
ValueBounds = Mapping[str, Any]  # key pattern -> (low, high); None for an open side


@dataclass(frozen=True)
class Verdict:
    """A guard's finding about a trial.

    guard: the guard's name (e.g. "flat_line"); epoch: the report it judged; evidence: the
    numbers it saw, by reported key or threshold name; reason: one sentence for a human;
    is_failure: True when the trial is broken, False when it is merely done (plateau).
    """

    guard: str
    epoch: int
    evidence: dict[str, float]
    reason: str
    is_failure: bool

    def to_result(self) -> dict[str, Any]:
        """Flat keys to merge into a Tune result (and to become MLflow tags)."""
        # Strict JSON has no NaN/Infinity, so non-finite evidence is written as a string.
        evidence = {
            key: value if math.isfinite(value) else str(value)
            for key, value in self.evidence.items()
        }
        return {
            "health/guard": self.guard,
            "health/reason": self.reason,
            "health/epoch": self.epoch,
            "health/failure": self.is_failure,
            "health/evidence": json.dumps(evidence, sort_keys=True),
        }


def _number(value: Any) -> float | None:
    """The value as a float when it is a real number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def _finite(value: Any) -> float | None:
    number = _number(value)
    return number if number is not None and math.isfinite(number) else None


def _epoch(history: History, index: int) -> int:
    report = history[index]
    for key in ("training_iteration", "epoch"):
        number = _finite(report.get(key))
        if number is not None:
            return int(number)
    return index + 1


def _series(history: History, key: str) -> list[tuple[int, float]]:
    """(report index, value) of every report where `key` is a finite number, oldest first."""
    return [
        (index, value)
        for index, report in enumerate(history)
        if (value := _finite(report.get(key))) is not None
    ]


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def _higher_is_better(key: str, *, metric: str, mode: str) -> bool:
    # Only the target metric's direction is declared; the others the guards read (recalls,
    # accuracies, AUROCs, MRR) are higher-is-better.
    return mode == "max" if key == metric else True


class _Guard(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    enabled: bool = Field(True, description="run this guard; false turns it off")

    def check(
        self, history: History, *, metric: str, mode: str, value_bounds: ValueBounds
    ) -> Verdict | None:
        """Judge the latest report of `history`; None when this guard sees nothing wrong."""
        raise NotImplementedError


class NonFiniteGuard(_Guard):
    """Stops a trial whose latest report holds NaN or +-Inf in any numeric value.

    A loss, metric or probe that is not finite means the numbers overflowed or divided by zero;
    nothing after it can be trusted. Keys under `health/` (this module's own output) are skipped.
    """

    name: ClassVar[str] = "non_finite"

    def check(self, history, *, metric, mode, value_bounds):
        if not history:
            return None
        report = history[-1]
        bad = {
            key: number
            for key, value in report.items()
            if not key.startswith("health/")
            and (number := _number(value)) is not None
            and not math.isfinite(number)
        }
        if not bad:
            return None
        epoch = _epoch(history, len(history) - 1)
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


class ImpossibleValueGuard(_Guard):
    """Stops a trial that reports a value outside the task's declared `value_bounds`.

    `value_bounds` maps an fnmatch pattern of the full reported key ("train/loss", "val/*_r1")
    to (lowest, highest) possible value; a value outside every matching range cannot happen in
    correct code (an InfoNCE below 0, a recall above 1), so the loss or metric is written wrong.
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

    def check(self, history, *, metric, mode, value_bounds):
        if not history or not value_bounds:
            return None
        report = history[-1]
        for key, value in report.items():
            number = _finite(value)
            if number is None:
                continue
            for pattern, bounds in value_bounds.items():
                if not fnmatchcase(key, pattern):
                    continue
                low, high = (-math.inf if b is None else float(b) for b in bounds)
                if number < low - self.tolerance * max(1.0, abs(low)):
                    side, bound, word = "below", low, "floor"
                elif number > high + self.tolerance * max(1.0, abs(high)):
                    side, bound, word = "above", high, "ceiling"
                else:
                    continue
                epoch = _epoch(history, len(history) - 1)
                kind = "loss" if key.startswith("train/") else "value"
                return Verdict(
                    guard=self.name,
                    epoch=epoch,
                    evidence={key: number, "low": low, "high": high},
                    reason=(
                        f"{key} was {_fmt(number)} at epoch {epoch}, {side} its {word} "
                        f"{_fmt(bound)}: a {kind} declared in [{_fmt(low)}, {_fmt(high)}] cannot "
                        f"be {side} it, so the code computing {key} is wrong"
                    ),
                    is_failure=True,
                )
        return None


class FlatLineGuard(_Guard):
    """Stops a trial whose training loss does not move: the weights are not learning.

    Fires when the loss is identical (within `relative_tolerance`) over the last
    `window_reports` reports, or when it was exactly 0 on the last `zero_loss_reports` reports
    (from the start, or after collapsing there): a loss of exactly 0 gives no gradient at all.
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

    def check(self, history, *, metric, mode, value_bounds):
        series = _series(history, self.loss_key)
        if not series or series[-1][0] != len(history) - 1:
            return None  # the latest report has no loss to judge
        epoch = _epoch(history, len(history) - 1)
        values = [value for _, value in series]
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
        first_epoch = _epoch(history, series[-self.window_reports][0])
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
                f"{self.loss_key} stayed at {_fmt(window[-1])} from epoch {first_epoch} to "
                f"{epoch} ({self.window_reports} reports, spread {spread:.3g}): the weights are "
                "not changing (learning rate 0, every parameter frozen, or a detached loss)"
            ),
            is_failure=True,
        )


class EmbeddingCollapseGuard(_Guard):
    """Stops a trial whose embeddings of one modality have collapsed to (nearly) one point.

    Reads the probes `probe/<modality>/offdiag_cosine` (mean cosine between distinct inputs'
    L2-normalised embeddings) and `probe/<modality>/dim_std` with `probe/<modality>/dim` (mean
    per-dimension std of the normalised embeddings, SimSiam's collapse signal: about 1/sqrt(d)
    when healthy, 0 when collapsed). A report shows collapse when either signal crosses its
    threshold. There is no warm-up (a collapse present at init counts), but the collapse must
    show on `consecutive_reports` reports in a row, ending at the latest, so that a transient
    at the first epoch that recovers does not kill a healthy trial; the default 2 still catches
    a collapse within 2 reports of its onset. Set 1 to stop on a single report. A collapse that
    is visibly lifting over those reports (the cosine fell by at least `min_recovery`, or the
    spread grew by that fraction) is left alone: embeddings of a model trained from scratch
    often start nearly collinear and spread out over the first epochs.
    """

    name: ClassVar[str] = "embedding_collapse"
    max_offdiag_cosine: float = Field(
        0.95, description="mean off-diagonal cosine at or above this is collapse"
    )
    min_dim_std_ratio: float = Field(
        0.1,
        ge=0,
        description="dim_std below this fraction of the healthy 1/sqrt(dim) is collapse",
    )
    consecutive_reports: int = Field(
        2, ge=1, description="reports in a row, ending at the latest, that must show collapse"
    )
    min_recovery: float = Field(
        0.005,
        ge=0,
        description="a fall of the cosine by this much (or a relative rise of the spread by "
        "this fraction x 10) across those reports means the collapse is lifting",
    )

    def _recovering(self, recent: Sequence[Mapping[str, Any]], signal_key: str) -> bool:
        """Whether the signal that shows the collapse moved back towards health over `recent`."""
        first, last = _finite(recent[0].get(signal_key)), _finite(recent[-1].get(signal_key))
        if len(recent) < 2 or first is None or last is None:
            return False
        if signal_key.endswith("offdiag_cosine"):
            return first - last >= self.min_recovery
        return last >= first * (1 + 10 * self.min_recovery)  # dim_std

    def _collapse(self, report: Mapping[str, Any], modality: str) -> dict[str, float] | None:
        """Evidence of collapse of `modality` in one report, or None."""
        prefix = f"probe/{modality}/"
        cosine = _finite(report.get(prefix + "offdiag_cosine"))
        if cosine is not None and cosine >= self.max_offdiag_cosine:
            return {
                prefix + "offdiag_cosine": cosine,
                "max_offdiag_cosine": self.max_offdiag_cosine,
            }
        dim_std = _finite(report.get(prefix + "dim_std"))
        dim = _finite(report.get(prefix + "dim"))
        if dim_std is not None and dim is not None and dim >= 1:
            floor = self.min_dim_std_ratio / math.sqrt(dim)
            if dim_std < floor:
                return {
                    prefix + "dim_std": dim_std,
                    prefix + "dim": dim,
                    "healthy_dim_std": 1 / math.sqrt(dim),
                    "min_dim_std": floor,
                }
        return None

    def check(self, history, *, metric, mode, value_bounds):
        if len(history) < self.consecutive_reports:
            return None
        modalities = dict.fromkeys(  # ordered, deduplicated
            next(group for group in match.groups() if group)
            for key in history[-1]
            if (match := _EMBEDDING_PROBE.match(key))
        )
        recent = history[-self.consecutive_reports :]
        for modality in modalities:
            evidences = [self._collapse(report, modality) for report in recent]
            if any(evidence is None for evidence in evidences):
                continue
            signal_key = next(key for key in evidences[-1] if key.startswith("probe/"))
            if self._recovering(recent, signal_key):
                continue
            evidence = evidences[-1]
            epoch = _epoch(history, len(history) - 1)
            if f"probe/{modality}/offdiag_cosine" in evidence:
                signal = (
                    f"mean off-diagonal cosine {_fmt(evidence[f'probe/{modality}/offdiag_cosine'])}"
                    f" >= {_fmt(self.max_offdiag_cosine)}"
                )
            else:
                signal = (
                    f"per-dimension std {_fmt(evidence[f'probe/{modality}/dim_std'])} < "
                    f"{_fmt(evidence['min_dim_std'])} ({_fmt(self.min_dim_std_ratio)} x the "
                    f"healthy 1/sqrt(d) = {_fmt(evidence['healthy_dim_std'])})"
                )
            in_a_row = (
                f" on {self.consecutive_reports} reports in a row"
                if self.consecutive_reports > 1
                else ""
            )
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence=evidence,
                reason=(
                    f"the {modality} embeddings collapsed at epoch {epoch}: {signal}{in_a_row}, "
                    "so every input maps to nearly the same vector (check the loss's negatives, "
                    "the temperature and the learning rate)"
                ),
                is_failure=True,
            )
        return None


class ChanceLevelGuard(_Guard):
    """Stops a trial whose validation metrics are still at chance level after a warm-up.

    On the latest report, once more than `warmup_reports` reports exist, in this order (the
    target metric's findings first):
    - every `val/<m>` with a `val/chance/<m>` beside it: at chance when no further from chance
      than a margin of `relative_tolerance` x chance, the margin capped at
      `max_headroom_fraction` of the distance from chance to the metric's declared bound in
      `value_bounds` (so binary accuracy, chance 0.5, is not at chance up to 0.75). For a target
      metric with mode "min" the direction flips. AUROC keys use the band rule instead;
    - every `val/*auroc*`: at chance when <= 0.5 + `auroc_band` (one band for both sides: an
      AUROC of 0.45 carries no more signal than 0.55, and a lower one means inverted scores);
    - every `val/*accuracy` with a majority-class rate (`val/<prefix>majority_rate`, else
      `val/majority_rate`): at chance when accuracy <= rate + `majority_tolerance`, even when
      the accuracy looks high (90% accuracy on 90% majority). Balanced accuracy is skipped: its
      chance level is 1 / classes, not the majority rate. When the report also has an AUROC
      clearly above chance and accuracy is not the target, the accuracy rule is skipped: the
      scores rank well and only the 0.5 threshold is off (rare positives, focal loss).
    """

    name: ClassVar[str] = "chance_level"
    warmup_reports: int = Field(
        2, ge=0, description="reports before this guard judges (early epochs may sit at chance)"
    )
    relative_tolerance: float = Field(
        0.5, ge=0, description="a metric within (1 + this) x its chance level is at chance"
    )
    max_headroom_fraction: float = Field(
        0.1,
        ge=0,
        le=1,
        description="cap on that margin, as a fraction of the gap from chance to the bound",
    )
    auroc_band: float = Field(
        0.05, ge=0, le=0.5, description="an AUROC <= 0.5 + this is at chance"
    )
    majority_tolerance: float = Field(
        0.01, ge=0, description="an accuracy <= majority-class rate + this is at chance"
    )

    def _bound(self, key: str, value_bounds: ValueBounds, upper: bool) -> float:
        for pattern, bounds in value_bounds.items():
            if fnmatchcase(key, pattern):
                bound = bounds[1] if upper else bounds[0]
                if bound is not None and math.isfinite(float(bound)):
                    return float(bound)
        return math.nan

    def _findings(self, report, *, metric, mode, value_bounds):
        """(key, evidence, explanation) for every metric at chance in one report."""
        for key in report:
            if not key.startswith("val/chance/"):
                continue
            metric_key = "val/" + key[len("val/chance/") :]
            value, chance = _finite(report.get(metric_key)), _finite(report[key])
            if value is None or chance is None or "auroc" in metric_key.lower():
                continue
            higher = _higher_is_better(metric_key, metric=metric, mode=mode)
            bound = self._bound(metric_key, value_bounds, upper=higher)
            margin = self.relative_tolerance * abs(chance)
            if not math.isnan(bound):
                margin = min(margin, self.max_headroom_fraction * abs(bound - chance))
            threshold = chance + margin if higher else chance - margin
            if (value <= threshold) if higher else (value >= threshold):
                yield metric_key, {metric_key: value, key: chance, "threshold": threshold}, (
                    f"{metric_key} was {_fmt(value)}, within {_fmt(margin)} of its chance level "
                    f"{_fmt(chance)}"
                )
        for key, raw in report.items():
            value = _finite(raw)
            if value is None or key.startswith("val/chance/"):
                continue
            if not fnmatchcase(key.lower(), "val/*auroc*"):
                continue
            threshold = 0.5 + self.auroc_band
            if value <= threshold:
                yield key, {key: value, "threshold": threshold}, (
                    f"{key} was {_fmt(value)}, not above 0.5 + {_fmt(self.auroc_band)}"
                    + (" (the scores are inverted)" if value < 0.5 - self.auroc_band else "")
                )
        # A detector whose scores rank well (AUROC clearly above 0.5) but whose fixed 0.5
        # threshold does not beat the majority class is miscalibrated, not at chance: its
        # accuracy is judged only when accuracy is the target metric.
        ranks_well = any(
            fnmatchcase(key.lower(), "val/*auroc*") and not key.startswith("val/chance/")
            and (_finite(raw) or 0.0) > 0.5 + self.auroc_band
            for key, raw in report.items()
        )
        for key, raw in report.items():
            value = _finite(raw)
            if value is None or key.startswith("val/chance/") or "balanced" in key.lower():
                continue
            if not fnmatchcase(key, "val/*accuracy"):
                continue
            rate_key = key[: -len("accuracy")] + "majority_rate"
            rate = _finite(report.get(rate_key))
            if rate is None:
                rate_key = "val/majority_rate"
                rate = _finite(report.get(rate_key))
            if rate is None:
                continue
            threshold = rate + self.majority_tolerance
            if value <= threshold and not (key != metric and ranks_well):
                yield key, {key: value, rate_key: rate, "threshold": threshold}, (
                    f"{key} was {_fmt(value)}, not above the majority-class rate {_fmt(rate)}"
                )

    def check(self, history, *, metric, mode, value_bounds):
        if len(history) <= self.warmup_reports:
            return None
        findings = list(
            self._findings(history[-1], metric=metric, mode=mode, value_bounds=value_bounds or {})
        )
        if not findings:
            return None
        findings.sort(key=lambda finding: finding[0] != metric)  # stable: target first
        _, evidence, what = findings[0]
        epoch = _epoch(history, len(history) - 1)
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence=evidence,
            reason=(
                f"{what} at epoch {epoch}, after a {self.warmup_reports}-report warm-up: the "
                "model predicts no better than chance (check labels, pairing of inputs and the "
                "learning rate)"
            ),
            is_failure=True,
        )


class ModalityIgnoredGuard(_Guard):
    """Stops a trial whose metric barely moves when one input modality is shuffled.

    For each probe `probe/<modality>_shuffled/<m>` beside `val/<m>` on the latest report (once
    more than `warmup_reports` reports exist), the real metric must beat the shuffled one by a
    gain of at least min(`min_absolute_gain`, `min_relative_gain` x |real metric|). Passing
    either test is enough: the absolute one keeps a model whose modality adds 0.05 accuracy on
    top of a strong other modality, the relative one keeps a small-scale recall (R@1 0.015 vs
    0.001 shuffled). A smaller gain means the model does not use that modality. The metrics are
    taken as higher-is-better, except the target metric under mode "min".
    """

    name: ClassVar[str] = "modality_ignored"
    warmup_reports: int = Field(
        2, ge=0, description="reports before this guard judges (the model learns one input first)"
    )
    min_absolute_gain: float = Field(
        0.02, ge=0, description="a gain over the shuffled metric of this much is enough"
    )
    min_relative_gain: float = Field(
        0.1, ge=0, description="so is a gain of this fraction of the real metric"
    )

    def check(self, history, *, metric, mode, value_bounds):
        if len(history) <= self.warmup_reports:
            return None
        report = history[-1]
        for key, raw in report.items():
            match = _SHUFFLED_PROBE.match(key)
            if match is None:
                continue
            modality, name = match.groups()
            metric_key = f"val/{name}"
            shuffled, real = _finite(raw), _finite(report.get(metric_key))
            if shuffled is None or real is None:
                continue
            higher = _higher_is_better(metric_key, metric=metric, mode=mode)
            gain = real - shuffled if higher else shuffled - real
            required = min(self.min_absolute_gain, self.min_relative_gain * abs(real))
            if gain >= required:
                continue
            epoch = _epoch(history, len(history) - 1)
            return Verdict(
                guard=self.name,
                epoch=epoch,
                evidence={metric_key: real, key: shuffled, "gain": gain, "required_gain": required},
                reason=(
                    f"the model ignores its {modality} input: {metric_key} was {_fmt(real)} at "
                    f"epoch {epoch} and {_fmt(shuffled)} with the {modality} inputs shuffled, a "
                    f"gain of {_fmt(gain)} < {_fmt(required)} (check that the {modality} "
                    "encoder's output reaches the loss)"
                ),
                is_failure=True,
            )
        return None


class PlateauGuard(_Guard):
    """Stops a converged trial: its target metric gained < `min_delta` in `patience` reports.

    Compares the best target value of the last `patience` reports with the best before them,
    in the trial's mode. Not a failure: the trial ends because more epochs would not help.
    """

    name: ClassVar[str] = "plateau"
    patience: int = Field(4, ge=1, description="reports without real gain before stopping")
    min_delta: float = Field(
        0.005, ge=0, description="smallest absolute gain in the target metric that counts"
    )

    def check(self, history, *, metric, mode, value_bounds):
        series = _series(history, metric)
        if len(series) <= self.patience or series[-1][0] != len(history) - 1:
            return None
        values = [value for _, value in series]
        best = max if mode == "max" else min
        before, recent = best(values[: -self.patience]), best(values[-self.patience :])
        gain = recent - before if mode == "max" else before - recent
        if gain >= self.min_delta:
            return None
        epoch = _epoch(history, len(history) - 1)
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence={
                "best_before": before,
                "best_recent": recent,
                "gain": gain,
                "min_delta": self.min_delta,
                "patience": float(self.patience),
            },
            reason=(
                f"{metric} plateaued: its best over the last {self.patience} reports up to "
                f"epoch {epoch} was {_fmt(recent)} against {_fmt(before)} before, a gain of "
                f"{_fmt(gain)} < {_fmt(self.min_delta)}, so more epochs will not help"
            ),
            is_failure=False,
        )


class HealthConfig(BaseModel):
    """The `health:` section of a search space: one entry per guard, each with its thresholds.

    Unknown keys are rejected, so a typo fails before any trial starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    non_finite: NonFiniteGuard = Field(default_factory=NonFiniteGuard)
    impossible_value: ImpossibleValueGuard = Field(default_factory=ImpossibleValueGuard)
    flat_line: FlatLineGuard = Field(default_factory=FlatLineGuard)
    embedding_collapse: EmbeddingCollapseGuard = Field(default_factory=EmbeddingCollapseGuard)
    chance_level: ChanceLevelGuard = Field(default_factory=ChanceLevelGuard)
    modality_ignored: ModalityIgnoredGuard = Field(default_factory=ModalityIgnoredGuard)
    plateau: PlateauGuard = Field(default_factory=PlateauGuard)

    def guards(self) -> list[_Guard]:
        """The enabled guards in the order they run: failures first, plateau last."""
        ordered = [getattr(self, field) for field in type(self).model_fields]
        return [guard for guard in ordered if guard.enabled]


def check_health(
    history: History,
    *,
    metric: str,
    mode: str,
    value_bounds: ValueBounds,
    config: HealthConfig,
) -> Verdict | None:
    """Run the enabled guards on the latest report of `history`; the first verdict, or None.

    history: one dict per report, oldest first (see the module docstring); metric: the target
    key, e.g. "val/mean_r1"; mode: "max" or "min"; value_bounds: the task's key pattern ->
    (low, high). Order: non_finite, impossible_value, flat_line, embedding_collapse,
    chance_level, modality_ignored, plateau.
    """
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    for guard in config.guards():
        verdict = guard.check(history, metric=metric, mode=mode, value_bounds=value_bounds or {})
        if verdict is not None:
            return verdict
    return None
