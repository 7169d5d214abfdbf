"""Where a metric's value sits: its declared range, its chance level and its best possible value.

The guards judge a value against these rather than against fixed numbers: "at chance" is
relative to the metric's own chance level, "near the ceiling" to its own best possible value.
"""

from __future__ import annotations

import math
import re
from fnmatch import fnmatchcase
from typing import Any, Mapping

from orchestrator.health.base import TrialFacts, ValueBounds, finite, higher_is_better

CHANCE_AUROC = 0.5
# Name parts of metrics that are fractions in [0, 1] when a task declares no bounds for them.
_FRACTION_PARTS = {
    "accuracy", "acc", "auroc", "auc", "auprc", "ap", "map", "mrr", "recall", "precision", "f1",
    "r1", "r5", "r10", "iou", "dice", "rate",
}


def is_auroc(key: str) -> bool:
    """An area under the ROC curve: chance is 0.5 whatever the data."""
    return "auroc" in key.lower() or key.lower().endswith("/auc")


def declared_bounds(key: str, value_bounds: ValueBounds) -> tuple[float, float]:
    """The tightest (low, high) of every value_bounds pattern matching `key`; -inf/inf if none."""
    low, high = -math.inf, math.inf
    for pattern, bounds in (value_bounds or {}).items():
        if fnmatchcase(key, pattern):
            if bounds[0] is not None:
                low = max(low, float(bounds[0]))
            if bounds[1] is not None:
                high = min(high, float(bounds[1]))
    return low, high


def looks_like_fraction(key: str) -> bool:
    """Whether the key's name says it is a fraction in [0, 1] (accuracy, AUROC, R@1, ...)."""
    name = key.rsplit("/", 1)[-1].lower()
    return any(part in _FRACTION_PARTS for part in re.split(r"[_@\-.]", name))


def value_range(key: str, report: Mapping[str, Any], trial: TrialFacts) -> tuple[float, float]:
    """The metric's (lowest, highest) possible value: as the task declares them, else [0, 1]
    for a metric named like a fraction whose reported value lies in [0, 1], else open."""
    low, high = declared_bounds(key, trial.value_bounds)
    value = finite(report.get(key))
    if (math.isinf(low) or math.isinf(high)) and looks_like_fraction(key) and value is not None \
            and 0.0 <= value <= 1.0:
        low = 0.0 if math.isinf(low) else low
        high = 1.0 if math.isinf(high) else high
    return low, high


def chance_level(key: str, report: Mapping[str, Any]) -> float | None:
    """The metric's chance level on this split: `<split>/chance/<name>` as the task reports it,
    else 0.5 for an AUROC, else None (unknown)."""
    split, _, name = key.partition("/")
    reported = finite(report.get(f"{split}/chance/{name}"))
    if reported is not None:
        return reported
    return CHANCE_AUROC if is_auroc(key) else None


def best_possible(key: str, report: Mapping[str, Any], trial: TrialFacts) -> float | None:
    """The best value the metric can take (its ceiling, or its floor when lower is better)."""
    low, high = value_range(key, report, trial)
    best = high if higher_is_better(key, trial) else low
    return best if math.isfinite(best) else None


def worst_reference(key: str, report: Mapping[str, Any], trial: TrialFacts) -> float | None:
    """What "no skill" means for the metric: its chance level, else the worst end of its range."""
    chance = chance_level(key, report)
    if chance is not None:
        return chance
    low, high = value_range(key, report, trial)
    worst = low if higher_is_better(key, trial) else high
    return worst if math.isfinite(worst) else None
