"""How much a validation metric moves by noise alone, so guards compare gains with noise.

Two sources, and the guard that uses each:

- **Sampling noise of the val set** (chance_level, modality_ignored, leakage): how far a metric
  computed on n val samples strays from its true value. The task reports it, per split, as
  `<split>/stderr/<metric>` (the standard error of that metric, e.g. from a bootstrap), or as
  `<split>/samples` (how many samples the split's metrics average over: images, scenes, pairs).
  From the count, a fraction metric's standard error is binomial, sqrt(p (1 - p) / n), and an
  AUROC's is Hanley & McNeil's (1982), with the class balance from `<split>/majority_rate` (or
  `<split>/chance/auprc`, the positive rate), balanced when neither is reported. Both are
  approximations: retrieval recalls average over more queries than images (the count of images
  overstates their noise: the guards err towards not stopping), and a metric of a model that
  changes every epoch is not a fresh sample of the same model. Without either key the guards
  fall back to fixed margins (see each guard).
- **Epoch-to-epoch scatter** (plateau): the val set is the same every epoch, so what makes the
  metric wander between reports is the model changing, not the sampling of the val set. It is
  estimated from the reports themselves, as the smaller of two estimates over the last few
  values: the residual spread around their least-squares line (a trend is not noise), and the
  median size of their second differences (robust to one jump, a sudden crash or a step up,
  which would inflate the first). Few reports give a rough estimate; taking the smaller errs
  towards calling a metric still improving.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from orchestrator.health.base import TrialFacts, finite
from orchestrator.health.metric_scale import is_auroc, value_range


def sample_count(key: str, report: Mapping[str, Any]) -> float | None:
    """The number of samples the split of `key` averages over, when the task reports it."""
    split = key.partition("/")[0]
    count = finite(report.get(f"{split}/samples"))
    return count if count is not None and count >= 1 else None


def standard_error(
    key: str, report: Mapping[str, Any], trial: TrialFacts, at: float | None = None
) -> float | None:
    """The sampling standard error of metric `key` in this report, at the value `at` (default:
    the reported value; pass the chance level to get the spread of a model with no skill).

    None when the task reports neither `<split>/stderr/<name>` nor a sample count for a
    fraction metric.
    """
    split, _, name = key.partition("/")
    reported = finite(report.get(f"{split}/stderr/{name}"))
    if reported is not None and reported >= 0:
        return reported
    count = sample_count(key, report)
    value = finite(report.get(key)) if at is None else at
    low, high = value_range(key, report, trial)
    if count is None or value is None or (low, high) != (0.0, 1.0):
        return None
    if is_auroc(key):
        return _auroc_standard_error(value, count, _minority_share(split, report))
    p = min(max(value, 0.5 / count), 1 - 0.5 / count)
    return math.sqrt(p * (1 - p) / count)


def _minority_share(split: str, report: Mapping[str, Any]) -> float:
    majority = finite(report.get(f"{split}/majority_rate"))
    if majority is not None and 0.5 <= majority < 1:
        return 1 - majority
    positives = finite(report.get(f"{split}/chance/auprc"))
    if positives is not None and 0 < positives < 1:
        return min(positives, 1 - positives)
    return 0.5


def _auroc_standard_error(auroc: float, count: float, minority_share: float) -> float:
    """Hanley & McNeil (1982), Radiology 143:29-36, equation 2."""
    positives = max(1.0, minority_share * count)
    negatives = max(1.0, count - positives)
    area = min(max(auroc, 1e-6), 1 - 1e-6)
    q1, q2 = area / (2 - area), 2 * area * area / (1 + area)
    variance = (area * (1 - area) + (positives - 1) * (q1 - area * area)
                + (negatives - 1) * (q2 - area * area)) / (positives * negatives)
    return math.sqrt(max(variance, 0.0))


def line_fit(values: Sequence[float]) -> tuple[float, float] | None:
    """(slope per report, scatter) of `values` (one per report, evenly spaced): the slope of
    their least-squares line, and their epoch-to-epoch noise as described in the module
    docstring. None for fewer than 4 values (the residuals need 2 degrees of freedom)."""
    count = len(values)
    if count < 4:
        return None
    xs = [index - (count - 1) / 2 for index in range(count)]
    mean = sum(values) / count
    slope = sum(x * (y - mean) for x, y in zip(xs, values)) / sum(x * x for x in xs)
    residuals = [y - (mean + slope * x) for x, y in zip(xs, values)]
    residual_std = math.sqrt(sum(r * r for r in residuals) / (count - 2))
    # For white noise of std s, a second difference has std sqrt(6) s and median |.| 0.6745 of that.
    second = sorted(abs(values[i] - 2 * values[i - 1] + values[i - 2]) for i in range(2, count))
    middle = len(second) // 2
    median = second[middle] if len(second) % 2 else (second[middle - 1] + second[middle]) / 2
    robust_std = median / (0.6745 * math.sqrt(6))
    return slope, min(residual_std, robust_std)
