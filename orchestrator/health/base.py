"""What every guard shares: the verdict, the guard base class, what a guard knows about the
trial, and small readers of a trial's reported history.

A history is a list with one dict per report (epoch), oldest first, holding the keys the trial
loop reported (`train/loss`, `val/mean_r1`, `val/chance/mean_r1`, `probe/image/offdiag_cosine`,
...; see tasks/base.py). The report's epoch is its `training_iteration`, else its `epoch`, else
its 1-based position. Values that are not real numbers (strings, None, bools, nested dicts) are
ignored by every guard.
"""

from __future__ import annotations

import json
import math
import numbers
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar, Mapping, Sequence

from pydantic import BaseModel, ConfigDict, Field

History = Sequence[Mapping[str, Any]]
# probe/<modality>_shuffled/<metric>: the metric with that modality's inputs shuffled
SHUFFLED_PROBE = re.compile(r"^probe/([^/]+)_shuffled/(.+)$")
ValueBounds = Mapping[str, Any]  # key pattern -> (low, high); None for an open side

# Two floats closer than this (relative to the larger, at least 1) are equal for every guard:
# a gain of 0.009999999999999953 is a gain of 0.01.
FLOAT_TOLERANCE = 1e-9


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


@dataclass(frozen=True)
class TrialFacts:
    """What a guard knows about the trial besides its history.

    metric: the target key, e.g. "val/mean_r1"; mode: "max" or "min"; value_bounds: the task's
    key pattern -> (lowest, highest) possible value; plausible_max: the task's reported key ->
    the highest value a correct model plausibly reaches on real data (optional, see tasks/base.py).
    """

    metric: str
    mode: str
    value_bounds: ValueBounds = field(default_factory=dict)
    plausible_max: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Coverage:
    """What one guard can see in a task's reports: whether it is on, on what, and what it misses.

    active: the guard can fire on this task; watches: what it reads, for a human ("image, text
    embeddings"); gaps: checks of this guard that are off for the task, each with why.
    """

    guard: str
    active: bool
    watches: str = ""
    gaps: tuple[str, ...] = ()


class Guard(BaseModel):
    """One failure mode: a small, stateless check over a trial's history (as Optuna's pruners).

    Its thresholds are its (documented, validated) fields; `check` judges the latest report;
    `coverage` says what the guard can see in one report of a task, for the preflight.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str]
    # A guard that judges whether the model learns (not whether a report is broken) is judged
    # over the reports of the current training regime only, and not while the trial's
    # unfreezing schedule will still free blocks (see check_health).
    judges_learning: ClassVar[bool] = False
    enabled: bool = Field(True, description="run this guard; false turns it off")

    def check(self, history: History, trial: TrialFacts) -> Verdict | None:
        """Judge the latest report of `history`; None when this guard sees nothing wrong."""
        raise NotImplementedError

    def coverage(self, report: Mapping[str, Any], trial: TrialFacts) -> Coverage:
        """What this guard would watch in a trial reporting the keys of `report`."""
        raise NotImplementedError

    def earliest_verdict(self) -> int:
        """The first report at which this guard can give a verdict (after its warm-up)."""
        return 1


# --- reading a history ---------------------------------------------------------------------


def number(value: Any) -> float | None:
    """The value as a float when it is a real number (bools excluded), else None."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return None
    return float(value)


def finite(value: Any) -> float | None:
    """The value as a float when it is a finite real number, else None."""
    found = number(value)
    return found if found is not None and math.isfinite(found) else None


def epoch_of(history: History, index: int) -> int:
    """The epoch of report `index`: its training_iteration, else its epoch, else its position."""
    report = history[index]
    for key in ("training_iteration", "epoch"):
        found = finite(report.get(key))
        if found is not None:
            return int(found)
    return index + 1


def latest_epoch(history: History) -> int:
    return epoch_of(history, len(history) - 1)


def series(history: History, key: str) -> list[tuple[int, float]]:
    """(report index, value) of every report where `key` is a finite number, oldest first."""
    return [
        (index, found)
        for index, report in enumerate(history)
        if (found := finite(report.get(key))) is not None
    ]


def window_values(history: History, key: str, size: int) -> list[float] | None:
    """`key` on each of the last `size` reports, oldest first; None when one lacks it."""
    if len(history) < size:
        return None
    values = [finite(report.get(key)) for report in history[-size:]]
    return None if any(value is None for value in values) else values


def higher_is_better(key: str, trial: TrialFacts) -> bool:
    """Only the target metric's direction is declared; the other keys the guards compare
    (recalls, accuracies, AUROCs, MRR) are higher-is-better."""
    return trial.mode == "max" if key == trial.metric else True


# --- comparing and printing numbers --------------------------------------------------------


def tolerance(*values: float) -> float:
    return FLOAT_TOLERANCE * max([1.0, *(abs(value) for value in values if math.isfinite(value))])


def below(value: float, limit: float) -> bool:
    """value < limit by more than float round-off."""
    return value < limit - tolerance(value, limit)


def at_most(value: float, limit: float) -> bool:
    """value <= limit, float round-off included."""
    return value <= limit + tolerance(value, limit)


def fmt(value: float) -> str:
    """A number for a reason: 4 significant digits."""
    return f"{value:.4g}"


def fmt_pair(smaller: float, larger: float) -> tuple[str, str]:
    """Both numbers with enough digits that `smaller` never prints as large as `larger`.

    A reason that reads "a gain of 0.01 < 0.01" contradicts itself; 0.009996 < 0.01 does not.
    """
    for digits in range(4, 16):
        left, right = f"{smaller:.{digits}g}", f"{larger:.{digits}g}"
        if float(left) < float(right) or not smaller < larger:
            return left, right
    return repr(smaller), repr(larger)


def fmt_list(values: Sequence[float]) -> str:
    return ", ".join(fmt(value) for value in values)
