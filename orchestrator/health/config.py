"""The `health:` section of a search space, and the one call the trial loop makes."""

from __future__ import annotations

from typing import Any, Mapping

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.health.base import Coverage, Guard, History, TrialFacts, ValueBounds, Verdict
from orchestrator.health.chance_level import ChanceLevelGuard
from orchestrator.health.embedding_collapse import EmbeddingCollapseGuard
from orchestrator.health.flat_line import FlatLineGuard
from orchestrator.health.impossible_value import ImpossibleValueGuard
from orchestrator.health.leakage import LeakageGuard
from orchestrator.health.modality_ignored import ModalityIgnoredGuard
from orchestrator.health.non_finite import NonFiniteGuard
from orchestrator.health.plateau import PlateauGuard


class HealthConfig(BaseModel):
    """The `health:` section of a search space: one entry per guard, each with its thresholds.

    The field order is the order the guards run in: the most specific diagnosis first (a
    collapse explains a flat loss, a leak explains an ignored modality), plateau (not a
    failure) last. Unknown keys are rejected, so a typo fails before any trial starts.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    non_finite: NonFiniteGuard = Field(default_factory=NonFiniteGuard)
    impossible_value: ImpossibleValueGuard = Field(default_factory=ImpossibleValueGuard)
    leakage: LeakageGuard = Field(default_factory=LeakageGuard)
    embedding_collapse: EmbeddingCollapseGuard = Field(default_factory=EmbeddingCollapseGuard)
    flat_line: FlatLineGuard = Field(default_factory=FlatLineGuard)
    chance_level: ChanceLevelGuard = Field(default_factory=ChanceLevelGuard)
    modality_ignored: ModalityIgnoredGuard = Field(default_factory=ModalityIgnoredGuard)
    plateau: PlateauGuard = Field(default_factory=PlateauGuard)

    def all_guards(self) -> list[Guard]:
        """Every guard, enabled or not, in the order they run."""
        return [getattr(self, name) for name in type(self).model_fields]

    def guards(self) -> list[Guard]:
        """The enabled guards in the order they run: failures first, plateau last."""
        return [guard for guard in self.all_guards() if guard.enabled]


def check_health(
    history: History,
    *,
    metric: str,
    mode: str,
    value_bounds: ValueBounds,
    config: HealthConfig,
    plausible_max: Mapping[str, float] | None = None,
    regime_start: int = 0,
    regime_settled: bool = True,
) -> Verdict | None:
    """Run the enabled guards on the latest report of `history`; the first verdict, or None.

    history: one dict per report, oldest first (see orchestrator/health/base.py); metric: the
    target key, e.g. "val/mean_r1"; mode: "max" or "min"; value_bounds: the task's key pattern
    -> (low, high); plausible_max: the task's reported key -> highest plausible value (the
    leakage guard's own plausible_max overrides it). Order: see HealthConfig.

    regime_start: the index of the first report trained the way the latest one was (the same
    encoder blocks trainable; 0 without an unfreezing schedule); regime_settled: whether the
    trial trains that way to its end. Guards that judge learning (chance level, an ignored
    modality, a plateau) see only the reports since regime_start, with their warm-ups counted
    from there, and stay silent while the schedule will still free blocks: a head trained on
    frozen features may sit near chance or level off until the encoder is freed, as planned.
    Failure guards (NaN, impossible values, collapse, leaks) judge every report.
    """
    trial = _facts(metric, mode, value_bounds, plausible_max)
    for guard in config.guards():
        if guard.judges_learning and not regime_settled:
            continue
        verdict = guard.check(history[regime_start:] if guard.judges_learning else history, trial)
        if verdict is not None:
            return verdict
    return None


def guard_coverage(
    report: Mapping[str, Any],
    *,
    metric: str,
    mode: str,
    value_bounds: ValueBounds,
    config: HealthConfig,
    plausible_max: Mapping[str, float] | None = None,
) -> list[Coverage]:
    """What each guard can see in a trial that reports the keys of `report` (one report of
    train/, val/ and probe/ keys), in run order; a disabled guard is off for that reason."""
    trial = _facts(metric, mode, value_bounds, plausible_max)
    return [
        guard.coverage(report, trial) if guard.enabled
        else Coverage(guard.name, False, gaps=(f"disabled by health.{guard.name}.enabled: false",))
        for guard in config.all_guards()
    ]


def _facts(metric, mode, value_bounds, plausible_max) -> TrialFacts:
    if mode not in ("max", "min"):
        raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
    return TrialFacts(metric, mode, dict(value_bounds or {}), dict(plausible_max or {}))
