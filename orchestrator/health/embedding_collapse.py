"""embedding_collapse: one modality's embeddings map every input to (nearly) the same point,
or to the zero vector."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, Sequence

from pydantic import Field

from orchestrator.health.base import (
    SHUFFLED_PROBE, Coverage, Guard, Verdict, at_most, below, finite, fmt, fmt_pair,
    higher_is_better, latest_epoch,
)
from orchestrator.health.metric_scale import worst_reference

# probe/<modality>/<statistic> for the statistics this guard reads
_EMBEDDING_PROBE = re.compile(r"^probe/([^/]+)/(offdiag_cosine|dim_std|zero_fraction)$")


@dataclass(frozen=True)
class _Signal:
    """One collapse signal of one modality on one report."""

    key: str
    value: float
    severity: float  # 0 at its threshold, 1 at total collapse
    text: str
    evidence: dict[str, float]


class EmbeddingCollapseGuard(Guard):
    """Stops a trial whose embeddings of one modality have collapsed.

    Reads, per modality, the probes (tasks/common/embedding_stats.py computes them):
    `probe/<modality>/offdiag_cosine` (mean cosine between distinct inputs' L2-normalised
    embeddings: near 1 when all point one way); `probe/<modality>/dim_std` with
    `probe/<modality>/dim` (mean per-dimension std of the normalised embeddings, SimSiam's
    signal: about 1/sqrt(d) when healthy, 0 when collapsed); `probe/<modality>/zero_fraction`
    (the share of embeddings that are zero vectors, as a dead ReLU before the normalisation
    gives: their cosine with anything is 0 and their spread 0, so the cosine alone cannot see
    them). A report shows collapse when any signal crosses its threshold.

    There is no warm-up (a collapse present at init counts), but it must show on
    `consecutive_reports` reports in a row, ending at the latest, so that a transient at the
    first epoch that recovers does not kill a healthy trial. A collapse that is visibly lifting
    over those reports (the cosine or the zero share fell by at least `min_recovery`, or the
    spread grew by 10 x that fraction) is left alone: embeddings of a model trained from scratch
    often start nearly collinear and spread out over the first epochs. So is a modality whose
    embeddings, though nearly collinear, still tell its inputs apart: shuffling its inputs
    (`probe/<modality>_shuffled/<m>`) costs a metric above chance at least half of what it holds
    above chance (a from-scratch text encoder at cosine 0.985 whose captions already lift R@1 to
    4 x chance). Zero vectors tell nothing apart and get no such pass. When several modalities
    collapse, the reason names the worst first (the signal furthest past its threshold; on a
    tie, the one collapsed longest).

    Sees: the modalities whose statistics the task probes. Cannot see: a collapse in a layer
    the task does not probe, or embeddings that keep their spread but lose their meaning.
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
    max_zero_fraction: float = Field(
        0.5, gt=0, le=1, description="a share of zero-vector embeddings at or above this is collapse"
    )
    exempt_informative: bool = Field(
        True, description="leave alone a modality whose shuffle costs the metric at least half of "
        "what it holds above chance (collinear embeddings that still tell inputs apart)",
    )
    consecutive_reports: int = Field(
        2, ge=1, description="reports in a row, ending at the latest, that must show collapse"
    )
    min_recovery: float = Field(
        0.005,
        ge=0,
        description="a fall of the cosine or zero share by this much (or a relative rise of the "
        "spread by this fraction x 10) across those reports means the collapse is lifting",
    )

    def _signals(self, report: Mapping[str, Any], modality: str) -> list[_Signal]:
        """The collapse signals of `modality` in one report (empty: no collapse)."""
        prefix = f"probe/{modality}/"
        found: list[_Signal] = []
        zero_share = finite(report.get(prefix + "zero_fraction"))
        cosine = finite(report.get(prefix + "offdiag_cosine"))
        dim_std = finite(report.get(prefix + "dim_std"))
        dim = finite(report.get(prefix + "dim"))
        if zero_share is not None and not below(zero_share, self.max_zero_fraction):
            found.append(_Signal(
                prefix + "zero_fraction", zero_share, zero_share,
                f"{fmt(100 * zero_share)}% of them are zero vectors (at least "
                f"{fmt(100 * self.max_zero_fraction)}%)",
                {prefix + "zero_fraction": zero_share, "max_zero_fraction": self.max_zero_fraction}))
        if cosine is not None and not below(cosine, self.max_offdiag_cosine):
            severity = (cosine - self.max_offdiag_cosine) / max(1e-12, 1 - self.max_offdiag_cosine)
            found.append(_Signal(
                prefix + "offdiag_cosine", cosine, min(1.0, severity),
                f"mean off-diagonal cosine {fmt(cosine)} >= {fmt(self.max_offdiag_cosine)}",
                {prefix + "offdiag_cosine": cosine, "max_offdiag_cosine": self.max_offdiag_cosine}))
        if dim_std is not None and dim is not None and dim >= 1:
            healthy = 1 / math.sqrt(dim)
            floor = self.min_dim_std_ratio * healthy
            if below(dim_std, floor):
                shown, limit = fmt_pair(dim_std, floor)
                zero_vectors = dim_std == 0.0 and cosine == 0.0 and zero_share is None
                text = ("per-dimension std 0 and mean cosine 0: every embedding is the zero vector"
                        if zero_vectors else
                        f"per-dimension std {shown} < {limit} ({fmt(self.min_dim_std_ratio)} x the "
                        f"healthy 1/sqrt(d) = {fmt(healthy)})")
                found.append(_Signal(
                    prefix + "dim_std", dim_std, 1 - dim_std / floor if floor > 0 else 1.0, text,
                    {prefix + "dim_std": dim_std, prefix + "dim": dim,
                     "healthy_dim_std": healthy, "min_dim_std": floor}))
        # worst first; near-ties (a cosine of 0.9999999 and a spread of 0) keep the order above
        return sorted(found, key=lambda signal: -round(signal.severity, 3))

    def _tells_inputs_apart(self, report: Mapping[str, Any], modality: str, trial) -> bool:
        """Whether shuffling this modality's inputs costs a metric at least half of what it
        holds above chance (itself above chance by half the chance level at least): embeddings
        that are nearly collinear yet still tell inputs apart are not collapsed."""
        for key, value in report.items():
            match = SHUFFLED_PROBE.match(key)
            if match is None or match.group(1) != modality:
                continue
            metric_key = f"val/{match.group(2)}"
            real, shuffled = finite(report.get(metric_key)), finite(value)
            chance = worst_reference(metric_key, report, trial)
            if real is None or shuffled is None or chance is None:
                continue
            sign = 1.0 if higher_is_better(metric_key, trial) else -1.0
            above = sign * (real - chance)
            if above > 0.5 * abs(chance) and sign * (real - shuffled) >= 0.5 * above:
                return True
        return False

    def _lifting(self, first: Mapping[str, Any], last: Mapping[str, Any], key: str) -> bool:
        """Whether the signal `key` moved back towards health between two reports."""
        before, after = finite(first.get(key)), finite(last.get(key))
        if before is None or after is None:
            return False
        if key.endswith("/dim_std"):
            return after > before * (1 + 10 * self.min_recovery) and not at_most(after, before)
        return not below(before - after, self.min_recovery) and before > after

    def _collapsed_since(self, history: Sequence[Mapping[str, Any]], modality: str) -> int:
        """How many reports in a row, ending at the latest, show this modality collapsed."""
        count = 0
        for report in reversed(history):
            if not self._signals(report, modality):
                break
            count += 1
        return count

    def check(self, history, trial):
        if len(history) < self.consecutive_reports:
            return None
        recent = history[-self.consecutive_reports :]
        collapsed = []
        for modality in _modalities(history[-1]):
            per_report = [self._signals(report, modality) for report in recent]
            if not all(per_report):
                continue
            zero_vectors = per_report[-1][0].key.endswith("zero_fraction")
            if self.exempt_informative and not zero_vectors and self._tells_inputs_apart(
                    history[-1], modality, trial):
                continue
            worst = per_report[-1][0]
            if len(recent) > 1 and any(
                self._lifting(recent[0], recent[-1], signal.key) for signal in per_report[-1]
            ):
                continue
            collapsed.append((worst.severity, self._collapsed_since(history, modality), modality, worst))
        if not collapsed:
            return None
        # worst first: furthest past its threshold, then collapsed for longer, then by name
        collapsed.sort(key=lambda item: (-item[0], -item[1], item[2]))
        epoch = latest_epoch(history)
        in_a_row = (
            f" on {self.consecutive_reports} reports in a row" if self.consecutive_reports > 1 else ""
        )
        _, _, modality, worst = collapsed[0]
        others = "; ".join(f"the {name} embeddings too ({signal.text})"
                           for _, _, name, signal in collapsed[1:])
        zero = worst.key.endswith("zero_fraction") or worst.text.startswith("per-dimension std 0 and")
        cause = ("a ReLU (or a zero-initialised layer) before the normalisation that outputs 0 "
                 "for every input, or an encoder output that never reaches the loss"
                 if zero else "check the loss's negatives, the temperature and the learning rate")
        evidence = dict(worst.evidence)
        for _, _, name, signal in collapsed[1:]:
            evidence[signal.key] = signal.value
        return Verdict(
            guard=self.name,
            epoch=epoch,
            evidence=evidence,
            reason=(
                f"the {modality} embeddings collapsed at epoch {epoch}: {worst.text}{in_a_row}, "
                f"so its inputs can no longer be told apart"
                + (f"; {others}" if others else "") + f" ({cause})"
            ),
            is_failure=True,
        )

    def earliest_verdict(self) -> int:
        return self.consecutive_reports

    def coverage(self, report, trial):
        modalities = _modalities(report)
        if not modalities:
            return Coverage(self.name, False, gaps=(
                "no probe/<modality>/offdiag_cosine, dim_std or zero_fraction reported",))
        gaps = []
        for modality in modalities:
            prefix = f"probe/{modality}/"
            if finite(report.get(prefix + "dim_std")) is not None and finite(report.get(prefix + "dim")) is None:
                gaps.append(f"{prefix}dim_std without {prefix}dim: its spread cannot be judged")
            if finite(report.get(prefix + "zero_fraction")) is None:
                gaps.append(f"no {prefix}zero_fraction: zero-vector embeddings show only as "
                            "a spread of 0")
        return Coverage(self.name, True, ", ".join(modalities) + " embeddings", tuple(gaps))


def _modalities(report: Mapping[str, Any]) -> list[str]:
    """Modalities with embedding statistics in the report, in report order, deduplicated."""
    return list(dict.fromkeys(
        match.group(1) for key in report if (match := _EMBEDDING_PROBE.match(key))
    ))
