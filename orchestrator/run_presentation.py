"""How trial and sweep runs present themselves in MLflow: names, statuses, descriptions, colours.

Pure functions over outcomes (orchestrator/outcomes.py) and sampled configs; the tracker
decides when to call them and writes what they return (run name, `set_terminated` status,
tag `mlflow.note.content` for the description, tag `mlflow.runColor` for the colour).
"""

from __future__ import annotations

import colorsys
import math
from typing import Any, Iterable, Mapping, Sequence

from orchestrator.outcomes import TrialOutcome

DESCRIPTION_TAG = "mlflow.note.content"  # markdown, shown on the run's page
COLOUR_TAG = "mlflow.runColor"  # "#rrggbb"; fixes the run's colour in the UI's charts
NAME_PARAMETERS = 3  # sampled parameters shown in a trial's name
SWEEP_RUN_COLOUR = "#b0b0b0"  # neutral grey: the sweep run is a summary, not a trial

# orchestrate's outcome -> the MLflow run status the UI shows (icon in the runs table, text on
# the run's page). A guard's failure verdict is a failure of the trial, whatever Tune thinks.
MLFLOW_STATUS = {
    "running": "RUNNING",
    "completed": "FINISHED",
    "converged": "FINISHED",
    "pruned": "FINISHED",
    "stopped": "FAILED",
    "failed": "FAILED",
    "interrupted": "KILLED",
}
STATUS_ORDER = ("completed", "converged", "pruned", "stopped", "failed", "interrupted", "running")

# Distinct colours (Tableau 10, then the lighter halves of tab20), in the order trials get them.
_PALETTE = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf",
    "#bcbd22", "#7f7f7f", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
)
_GOLDEN_ANGLE = 0.381966  # fraction of a turn: successive hues never land on each other


def mlflow_status(status: str) -> str:
    """The MLflow run status for an orchestrate outcome status (see outcomes.py).

    stopped (a failure guard) and failed -> FAILED; interrupted -> KILLED; running -> RUNNING;
    completed, converged, pruned -> FINISHED. An unknown status raises ValueError.
    """
    try:
        return MLFLOW_STATUS[status]
    except KeyError:
        raise ValueError(f"unknown trial status {status!r}; known: {', '.join(MLFLOW_STATUS)}") from None


def abbreviation(name: str, letters: int = 1) -> str:
    """A short label for a parameter name, derived from the name alone.

    Several words (snake_case): the first `letters` letters of each (learning_rate -> lr,
    hard_negative_ratio -> hnr). One word: its first 3 + `letters` letters (temperature ->
    temp, pooling -> pool).
    """
    words = _words(name)
    if len(words) == 1:
        return words[0][: 3 + letters]
    return "".join(word[:letters] for word in words)


def abbreviations(names: Iterable[str]) -> dict[str, str]:
    """Unique short labels for the names: labels that clash take one more letter of each word
    until they differ (hard_negative_ratio, hidden_node_ratio -> hanera, hinora)."""
    names = list(dict.fromkeys(names))
    labels = {name: abbreviation(name) for name in names}
    letters = 1
    while True:
        clashing = [n for n in names if sum(labels[o] == labels[n] for o in names) > 1]
        if not clashing:
            return labels
        letters += 1
        if letters > max(len(word) for name in clashing for word in _words(name)):
            return {name: (name if name in clashing else label) for name, label in labels.items()}
        for name in clashing:
            labels[name] = abbreviation(name, letters)


def _words(name: str) -> list[str]:
    return [word for word in name.replace("-", "_").replace(".", "_").split("_") if word] or [name]


def format_value(value: Any) -> str:
    """A parameter value in a run name: 2 significant digits, exponents kept short (3.1e-4).
    Numbers given as text (MLflow keeps params as text) are shown as numbers."""
    if isinstance(value, str):
        value = _number_or_text(value)
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value == 0 or not math.isfinite(value):
            return str(value)
        if 1e-2 <= abs(value) < 1e2:
            return f"{value:.2g}"
        mantissa, exponent = f"{value:.1e}".split("e")
        return f"{mantissa.removesuffix('.0')}e{int(exponent)}"
    text = str(value)
    return text if len(text) <= 10 else text[:9] + "…"


def varying_parameters(
    configs: Sequence[Mapping[str, Any]], candidates: Sequence[str], limit: int = NAME_PARAMETERS
) -> list[str]:
    """The candidate parameters whose shown values differ across the most trials.

    configs: the sampled configs of the sweep's trials (all of them at the sweep's end, those
    started so far during it). candidates: the searched parameter names in the search space's
    order (ties keep this order). A parameter whose shown value (format_value) is the same in
    every config is left out when others differ; at most `limit` names are returned.
    """
    ranked = []
    for order, name in enumerate(candidates):
        shown = {format_value(config[name]) for config in configs if name in config}
        if shown:
            ranked.append((-len(shown), order, name))
    ranked.sort()
    varying = [name for count, _, name in ranked if count < -1]
    chosen = varying or [name for _, _, name in ranked]
    return chosen[:limit]


def trial_run_name(index: int, config: Mapping[str, Any], shown: Sequence[str],
                   labels: Mapping[str, str] | None = None) -> str:
    """`t07 lr=3.1e-4 temp=0.05 hnr=0.2`: the trial's 1-based index in its sweep, then the
    values of the `shown` parameters it has (a conditional parameter it lacks is skipped).

    labels: parameter -> short label (default: abbreviations(shown)).
    """
    labels = labels or abbreviations(shown)
    parts = [f"t{index:02d}"]
    parts += [f"{labels[name]}={format_value(config[name])}" for name in shown if name in config]
    return " ".join(parts)


def trial_description(outcome: TrialOutcome, metric: str,
                      evidence: Mapping[str, Any] | None = None) -> str:
    """The trial run's description (markdown): how it ended, the full reason, its best metric,
    and the guard's evidence when a guard ended it.

    evidence: the guard's evidence (the JSON of the result's `health/evidence`), default
    outcome.evidence.
    """
    evidence = outcome.evidence if evidence is None else evidence
    lines = [f"**{outcome.status}**" + (f" by guard `{outcome.guard}`" if outcome.guard else "")
             + f" after {outcome.epochs} epoch{'s' if outcome.epochs != 1 else ''}", ""]
    if outcome.reason:
        lines += [outcome.reason, ""]
    if outcome.best_metric is not None:
        at = f" at epoch {outcome.best_epoch}" if outcome.best_epoch is not None else ""
        lines += [f"Best `{metric}`: {outcome.best_metric:.4f}{at}", ""]
    if outcome.guard and evidence:
        lines += ["Evidence:", ""]
        lines += [f"- `{key}`: {_evidence_value(value)}" for key, value in sorted(evidence.items())]
    return "\n".join(lines).strip() + "\n"


def sweep_description(
    sweep_name: str,
    metric: str,
    mode: str,
    outcomes: Sequence[TrialOutcome],
    names: Mapping[str, str],
    winner: TrialOutcome | None,
) -> str:
    """The sweep run's description (markdown): trials per status, the winner, and every guard
    verdict with the trial it ended.

    outcomes: every trial of the sweep, in start order; names: trial id -> run name (the
    trial id stands in for a trial without one); winner: the ledger's best (None if none).
    """
    counts = {status: 0 for status in STATUS_ORDER}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    name = lambda outcome: names.get(outcome.trial_id, outcome.trial_id)  # noqa: E731
    lines = [f"## Sweep {sweep_name}: {len(outcomes)} trials, {metric} ({mode})", "",
             "| status | trials |", "|---|---|"]
    lines += [f"| {status} | {count} |" for status, count in counts.items() if count]
    lines.append("")
    if winner is not None and winner.best_metric is not None:
        lines.append(f"**Winner**: `{name(winner)}`, {metric} = {winner.best_metric:.4f}"
                     + (f" at epoch {winner.best_epoch}" if winner.best_epoch is not None else ""))
    else:
        lines.append("**No winner**: no trial finished well (completed, converged or pruned).")
    verdicts = [outcome for outcome in outcomes if outcome.guard]
    if verdicts:
        lines += ["", "### Guard verdicts", ""]
        lines += [f"- `{name(o)}` {o.status} by `{o.guard}`: {o.reason}" for o in verdicts]
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    if failed:
        lines += ["", "### Failed trials", ""]
        lines += [f"- `{name(o)}`: {o.reason}" for o in failed]
    return "\n".join(lines) + "\n"


def trial_colour(index: int) -> str:
    """A colour for the trial with this 1-based index in its sweep, never the colour of an
    earlier trial: the first 20 come from a fixed palette of distinct colours, later ones walk
    the hue circle by the golden angle at three lightness levels."""
    if index < 1:
        raise ValueError(f"trial index starts at 1, got {index}")
    while len(_colours) < index:
        _step[0] += 1
        candidate = _hue_walk(_step[0])
        if candidate not in _colours:
            _colours.append(candidate)
    return _colours[index - 1]


_colours: list[str] = list(_PALETTE)  # every colour handed out so far, in index order
_step = [0]


def _hue_walk(step: int) -> str:
    hue = (step * _GOLDEN_ANGLE) % 1.0
    lightness = (0.35, 0.5, 0.65)[step % 3]
    red, green, blue = colorsys.hls_to_rgb(hue, lightness, 0.75)
    return "#{:02x}{:02x}{:02x}".format(*(round(channel * 255) for channel in (red, green, blue)))


def _number_or_text(text: str) -> Any:
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _evidence_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
