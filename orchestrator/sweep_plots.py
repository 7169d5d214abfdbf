"""Plots of a whole sweep, drawn from what MLflow recorded (so they work after the fact).

The sweep's trials are rebuilt as an in-memory Optuna study (one `create_trial` per trial run,
distributions from the sweep's search-space file, or inferred from the values when the file is
gone), and Optuna's own matplotlib visualisations draw the optimisation history, parameter
importances and parallel coordinates. A learning-curve plot shows every trial's target metric
by epoch, coloured by how the trial ended. `log_sweep_plots` puts them on the sweep run under
`plots/`.
"""

from __future__ import annotations

import math
import tempfile
import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from mlflow.tracking import MlflowClient
from optuna.distributions import (
    BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution,
)
from optuna.trial import TrialState

from orchestrator.outcomes import FINISHED_WELL
from orchestrator.spaces import CategoricalParam, FloatParam, IntParam, SearchSpaceSpec, SpecError, load_spec
from orchestrator.tracking import PARENT, ROLE, STATUS, best_metric_key
from tasks.common.figures import new_figure, png_bytes

PLOTS_DIR = "plots"
STATUS_COLOURS = {
    "completed": "#2ca02c", "converged": "#1f77b4", "pruned": "#9e9e9e", "stopped": "#d62728",
    "failed": "#7f0000", "interrupted": "#ff7f0e", "running": "#bcbd22",
}


@dataclass
class TrialRecord:
    """One trial of a sweep as MLflow holds it.

    params: the logged params (text, as MLflow keeps them); best: best value of the target
    metric (None if it never reported one); history: epoch -> target metric.
    """

    run_id: str
    name: str
    status: str
    params: dict[str, str]
    best: float | None = None
    history: dict[int, float] = field(default_factory=dict)


@dataclass(frozen=True)
class SweepRecord:
    """A sweep run and its trials, oldest trial first."""

    run_id: str
    name: str
    metric: str
    mode: str
    spec: SearchSpaceSpec | None
    trials: list[TrialRecord]


def read_sweep(client: MlflowClient, sweep_run_id: str, with_history: bool = True) -> SweepRecord:
    """The sweep run's metric, mode, search space (None when its file is gone or invalid) and
    trials with (with_history) their target-metric histories, from MLflow alone."""
    sweep = client.get_run(sweep_run_id)
    metric = sweep.data.params.get("metric", "")
    mode = sweep.data.params.get("mode", "max")
    spec = None
    space_file = sweep.data.params.get("search_space")
    if space_file and Path(space_file).is_file():
        try:
            spec = load_spec(Path(space_file))
        except SpecError:
            spec = None
    runs = client.search_runs(
        [sweep.info.experiment_id],
        filter_string=f"tags.`{PARENT}` = '{sweep_run_id}' and tags.`{ROLE}` = 'trial'",
        order_by=["attributes.start_time ASC"], max_results=50000,
    )
    trials = []
    for run in runs:
        history = ({m.step: m.value for m in client.get_metric_history(run.info.run_id, metric)}
                   if metric and with_history else {})
        trials.append(TrialRecord(
            run_id=run.info.run_id, name=run.info.run_name or run.info.run_id,
            status=run.data.tags.get(STATUS, "running"), params=dict(run.data.params),
            best=run.data.metrics.get(best_metric_key(metric)), history=history,
        ))
    return SweepRecord(sweep_run_id, sweep.info.run_name, metric, mode, spec, trials)


def study_from_trials(trials: list[TrialRecord], mode: str, spec: SearchSpaceSpec | None) -> optuna.Study:
    """An in-memory Optuna study with one trial per record.

    Trials that finished well (completed, converged, pruned) are COMPLETE with their best
    target value (a pruned trial's value is the best it reached before ASHA stopped it);
    stopped and failed ones are FAIL; running and interrupted ones are left out. Every trial
    keeps its per-epoch metric as intermediate values. Distributions come from the spec's
    searched parameters when every value fits them, else they are inferred from the values.
    """
    distributions = _spec_distributions(spec, trials) if spec is not None else None
    if distributions is None:
        distributions = _inferred_distributions(trials)
    verbosity = optuna.logging.get_verbosity()
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # no "A new study created" line
    try:
        study = optuna.create_study(direction="maximize" if mode == "max" else "minimize")
    finally:
        optuna.logging.set_verbosity(verbosity)
    for trial in trials:
        if trial.status in FINISHED_WELL and trial.best is not None and math.isfinite(trial.best):
            state, value = TrialState.COMPLETE, trial.best
        elif trial.status in ("stopped", "failed"):
            state, value = TrialState.FAIL, None
        else:
            continue
        params = {name: _parse(trial.params[name], distribution)
                  for name, distribution in distributions.items() if name in trial.params}
        study.add_trial(optuna.trial.create_trial(
            state=state, value=value, params=params,
            distributions={name: distributions[name] for name in params},
            intermediate_values={step: v for step, v in trial.history.items() if math.isfinite(v)},
            user_attrs={"run_name": trial.name, "status": trial.status},
        ))
    return study


# Optuna draws through pyplot and sets its global style; tasks swept side by side
# (orchestrator/concurrent_sweeps.py) end in threads of their own, which draw one at a time.
_PYPLOT = threading.Lock()


def sweep_figures(sweep: SweepRecord) -> dict[str, Figure]:
    """file name -> figure: learning_curves.png always (when any trial reported the metric);
    optimization_history.png, param_importances.png and parallel_coordinate.png when the study
    has enough finished trials for Optuna to draw them (1, 2 with a varying parameter, 1)."""
    figures: dict[str, Figure] = {}
    if any(trial.history for trial in sweep.trials):
        figures["learning_curves.png"] = learning_curves(sweep)
    study = study_from_trials(sweep.trials, sweep.mode, sweep.spec)
    complete = [t for t in study.trials if t.state == TrialState.COMPLETE]
    import matplotlib

    matplotlib.use("Agg")  # Optuna draws through pyplot; never open a window on a driver
    from matplotlib import pyplot
    from optuna.visualization import matplotlib as optuna_plots

    drawers = {
        "optimization_history.png": (1, lambda: optuna_plots.plot_optimization_history(
            study, target_name=sweep.metric)),
        "param_importances.png": (2, lambda: optuna_plots.plot_param_importances(
            study, target_name=sweep.metric)),
        "parallel_coordinate.png": (1, lambda: optuna_plots.plot_parallel_coordinate(
            study, target_name=sweep.metric)),
    }
    for file_name, (needed, draw) in drawers.items():
        if len(complete) < needed or (file_name == "param_importances.png" and not _varies(complete)):
            continue
        # Optuna sets pyplot's global style; rc_context puts it back afterwards.
        with matplotlib.rc_context(), warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.simplefilter("ignore", UserWarning)  # one-trial axes with low == high
            axes = draw()
            figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
            # wide enough for one labelled axis per parameter, then labels fitted inside
            width = 8.0 if file_name != "parallel_coordinate.png" else max(8.0, 1.1 * len(figure.axes))
            figure.set_size_inches(width, 4.8)
            figure.tight_layout()
            figures[file_name] = figure
            pyplot.close(figure)  # the figure lives on, outside pyplot's registry
    return figures


def learning_curves(sweep: SweepRecord) -> Figure:
    """Every trial's target metric by epoch on one plot, coloured by how the trial ended."""
    figure = new_figure(7.0, 4.2)
    axes = figure.subplots()
    seen: set[str] = set()
    for trial in sweep.trials:
        if not trial.history:
            continue
        steps = sorted(trial.history)
        colour = STATUS_COLOURS.get(trial.status, "#000000")
        label = trial.status if trial.status not in seen else None
        seen.add(trial.status)
        axes.plot(steps, [trial.history[s] for s in steps], color=colour, marker="o", markersize=3,
                  linewidth=1.2, alpha=0.85, label=label)
        axes.annotate(trial.name.split(" ")[0], (steps[-1], trial.history[steps[-1]]), fontsize=6,
                      xytext=(3, 0), textcoords="offset points", color=colour)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    axes.set(xlabel="epoch", ylabel=sweep.metric,
             title=f"{sweep.name}: {sweep.metric} of every trial ({sweep.mode})")
    axes.legend(fontsize=7, title="trial status", title_fontsize=7)
    return figure


def log_sweep_plots(client: MlflowClient, sweep_run_id: str) -> list[str]:
    """Draw the sweep's plots from MLflow and log them on the sweep run under plots/;
    returns the artifact paths logged."""
    sweep = read_sweep(client, sweep_run_id)
    with tempfile.TemporaryDirectory() as directory:
        with _PYPLOT:  # drawing and rendering use pyplot's global style, so one thread at a time
            figures = sweep_figures(sweep)
            for file_name, figure in figures.items():
                (Path(directory) / file_name).write_bytes(png_bytes(figure))
        if figures:
            client.log_artifacts(sweep_run_id, directory, PLOTS_DIR)
    return [f"{PLOTS_DIR}/{file_name}" for file_name in figures]


def searched_parameters(sweep: SweepRecord) -> list[str]:
    """The sweep's searched parameters: the search space's, in its order, or, when its file is
    gone, those whose logged values differ between trials (sorted)."""
    if sweep.spec is not None:
        return list(sweep.spec.parameters)
    return sorted(_inferred_distributions(sweep.trials))


def _varies(trials: list[optuna.trial.FrozenTrial]) -> bool:
    """Whether any parameter takes two values among the trials (importance needs one)."""
    names = {name for trial in trials for name in trial.params}
    return any(len({repr(t.params.get(name)) for t in trials}) > 1 for name in names)


def _spec_distributions(spec: SearchSpaceSpec, trials: list[TrialRecord]) -> dict[str, BaseDistribution] | None:
    distributions: dict[str, BaseDistribution] = {}
    for name, param in spec.parameters.items():
        if isinstance(param, FloatParam):
            distributions[name] = FloatDistribution(param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, IntParam):
            distributions[name] = IntDistribution(param.low, param.high, log=param.log, step=param.step)
        elif isinstance(param, CategoricalParam):
            distributions[name] = CategoricalDistribution(param.choices)
    for trial in trials:  # a space edited since the sweep: its values may not fit any more
        for name, distribution in distributions.items():
            if name in trial.params:
                try:
                    value = _parse(trial.params[name], distribution)
                    if not distribution._contains(distribution.to_internal_repr(value)):
                        return None
                except (ValueError, KeyError):
                    return None
    return distributions


def _inferred_distributions(trials: list[TrialRecord]) -> dict[str, BaseDistribution]:
    """Distributions spanning the values the trials took, for parameters that vary."""
    values: dict[str, list[str]] = {}
    for trial in trials:
        for name, value in trial.params.items():
            values.setdefault(name, []).append(value)
    distributions: dict[str, BaseDistribution] = {}
    for name, texts in values.items():
        if len(set(texts)) < 2:
            continue  # a fixed value, not a searched parameter
        numbers = [_number(text) for text in texts]
        if any(number is None for number in numbers):
            distributions[name] = CategoricalDistribution(sorted(set(texts)))
        elif all(float(n).is_integer() and "." not in t and "e" not in t.lower() for n, t in zip(numbers, texts)):
            distributions[name] = IntDistribution(int(min(numbers)), int(max(numbers)))
        else:
            low, high = min(numbers), max(numbers)
            distributions[name] = FloatDistribution(low, high, log=low > 0 and high / low >= 10)
    return distributions


def _parse(text: str, distribution: BaseDistribution) -> Any:
    if isinstance(distribution, IntDistribution):
        return int(float(text))
    if isinstance(distribution, FloatDistribution):
        return float(text)
    for choice in distribution.choices:  # MLflow keeps str(choice)
        if str(choice) == text:
            return choice
    raise ValueError(f"{text!r} is not one of {distribution.choices}")


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
