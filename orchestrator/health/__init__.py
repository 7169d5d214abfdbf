"""Run-health guards: pure checks over a trial's reported history that stop doomed trials early.

One module per guard, in the manner of Optuna's pruners (optuna/pruners/): each guard is one
small, stateless class whose thresholds are its (documented, validated) fields, whose `check`
judges the latest report of a history and whose `coverage` says what it can see in a task's
reports. The guard classes are also the sub-models of `HealthConfig`, so a search space's
`health:` section sets them directly:

    health:
      plateau: {patience: 6, min_delta: 0.01}
      chance_level: {enabled: false}
      leakage: {plausible_max: {val/accuracy: 0.95}}

Every guard judges the trial *now*, at the latest report, using earlier reports only as
context (a window, a warm-up, a patience): `check_health` is called after every report, so a
failure is caught at the report where its evidence first suffices, and an old, recovered blip
never stops a trial later. The verdict's epoch is the report that was judged.

Modules: base (Verdict, Guard, TrialFacts, history readers), metric_scale (chance level and
best value of a metric), noise (how much a metric moves by noise), one module per guard
(non_finite, impossible_value, leakage, embedding_collapse, flat_line, chance_level,
modality_ignored, plateau), config (HealthConfig, check_health, guard_coverage).
"""

from orchestrator.health.base import Coverage, Guard, TrialFacts, Verdict
from orchestrator.health.chance_level import ChanceLevelGuard
from orchestrator.health.config import HealthConfig, check_health, guard_coverage
from orchestrator.health.embedding_collapse import EmbeddingCollapseGuard
from orchestrator.health.flat_line import FlatLineGuard
from orchestrator.health.impossible_value import ImpossibleValueGuard
from orchestrator.health.leakage import LeakageGuard
from orchestrator.health.modality_ignored import ModalityIgnoredGuard
from orchestrator.health.non_finite import NonFiniteGuard
from orchestrator.health.plateau import PlateauGuard

__all__ = [
    "ChanceLevelGuard", "Coverage", "EmbeddingCollapseGuard", "FlatLineGuard", "Guard",
    "HealthConfig", "ImpossibleValueGuard", "LeakageGuard", "ModalityIgnoredGuard",
    "NonFiniteGuard", "PlateauGuard", "TrialFacts", "Verdict", "check_health", "guard_coverage",
]
