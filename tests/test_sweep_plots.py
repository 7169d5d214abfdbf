"""Plots of a whole sweep, rebuilt from what MLflow recorded (a real sqlite store)."""

import io
from pathlib import Path

import optuna
import yaml
from mlflow.entities import Metric, Param
from mlflow.tracking import MlflowClient
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState
import pytest
from PIL import Image

from orchestrator.sweep_plots import (
    STATUS_COLOURS, log_sweep_plots, read_sweep, searched_parameters, study_from_trials, sweep_figures,
)

METRIC = "val/mean_r1"
SPACE = {
    "metric": METRIC, "mode": "max", "budget": {"max_epochs": 4},
    "fixed": {"batch_size": 64},
    "parameters": {
        "learning_rate": {"type": "float", "low": 1.0e-4, "high": 1.0e-2, "log": True},
        "layers": {"type": "int", "low": 1, "high": 4},
        "pooling": {"type": "categorical", "choices": ["mean", "max"]},
    },
}
# (status, learning_rate, layers, pooling, metric by epoch)
TRIALS = [
    ("completed", 1e-3, 2, "mean", [0.10, 0.20, 0.30, 0.35]),
    ("pruned", 5e-3, 1, "max", [0.05]),
    ("stopped", 9e-3, 4, "max", [0.01, 0.01]),
    ("converged", 2e-4, 3, "mean", [0.15, 0.25, 0.26]),
    ("interrupted", 3e-4, 2, "max", [0.12]),
]


def record_sweep(tmp_path: Path, space: dict | None = SPACE) -> tuple[MlflowClient, str]:
    """A sweep as the tracker records it: a sweep run and nested trial runs with text params,
    per-epoch metrics, best/<metric>, status tags."""
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.create_experiment("demo", artifact_location=str(tmp_path / "artifacts"))
    space_file = tmp_path / "space.yaml"
    if space is not None:
        space_file.write_text(yaml.safe_dump(space, sort_keys=False))
    sweep = client.create_run(experiment, run_name="sweep-1", tags={"orchestrate.role": "sweep"})
    sweep_id = sweep.info.run_id
    client.log_batch(sweep_id, params=[Param("metric", METRIC), Param("mode", "max"),
                                       Param("search_space", str(space_file))])
    for index, (status, learning_rate, layers, pooling, history) in enumerate(TRIALS):
        run = client.create_run(experiment, run_name=f"t{index + 1:02d}", start_time=1000 + index, tags={
            "orchestrate.role": "trial", "mlflow.parentRunId": sweep_id, "orchestrate.status": status})
        params = {"learning_rate": learning_rate, "layers": layers, "pooling": pooling, "batch_size": 64}
        metrics = [Metric(METRIC, value, 0, step) for step, value in enumerate(history, start=1)]
        metrics.append(Metric(f"best/{METRIC}", max(history), 0, len(history)))
        client.log_batch(run.info.run_id, params=[Param(k, str(v)) for k, v in params.items()], metrics=metrics)
        client.set_terminated(run.info.run_id, "FINISHED")
    client.set_terminated(sweep_id, "FINISHED")
    return client, sweep_id


@pytest.fixture(scope="module")
def recorded(tmp_path_factory) -> tuple[MlflowClient, str]:
    """One recorded sweep shared by the tests that only read it (a new store costs seconds)."""
    return record_sweep(tmp_path_factory.mktemp("sweep"))


def test_trials_become_an_optuna_study_with_the_search_spaces_distributions(recorded):
    client, sweep_id = recorded
    sweep = read_sweep(client, sweep_id)
    assert [trial.name for trial in sweep.trials] == ["t01", "t02", "t03", "t04", "t05"]
    assert sweep.trials[0].history == {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.35}
    study = study_from_trials(sweep.trials, sweep.mode, sweep.spec)
    assert study.direction == optuna.study.StudyDirection.MAXIMIZE
    states = [trial.state for trial in study.trials]
    # interrupted trials are left out; a guard's stop is a failure; pruned counts with its best
    assert states == [TrialState.COMPLETE, TrialState.COMPLETE, TrialState.FAIL, TrialState.COMPLETE]
    assert [trial.value for trial in study.trials] == [0.35, 0.05, None, 0.26]
    first = study.trials[0]
    assert first.params == {"learning_rate": 1e-3, "layers": 2, "pooling": "mean"}  # fixed ones left out
    assert first.distributions["learning_rate"] == FloatDistribution(1e-4, 1e-2, log=True)
    assert first.distributions["layers"] == IntDistribution(1, 4)
    assert first.distributions["pooling"] == CategoricalDistribution(["mean", "max"])
    assert first.intermediate_values == {1: 0.10, 2: 0.20, 3: 0.30, 4: 0.35}
    assert study.best_trial.user_attrs["run_name"] == "t01"
    assert searched_parameters(sweep) == ["learning_rate", "layers", "pooling"]


def test_without_the_search_space_file_distributions_come_from_the_values(tmp_path):
    client, sweep_id = record_sweep(tmp_path, space=None)
    sweep = read_sweep(client, sweep_id)
    assert sweep.spec is None
    study = study_from_trials(sweep.trials, sweep.mode, sweep.spec)
    distributions = study.trials[0].distributions
    assert set(distributions) == {"learning_rate", "layers", "pooling"}  # batch_size never varied
    assert distributions["learning_rate"] == FloatDistribution(2e-4, 9e-3, log=True)
    assert distributions["layers"] == IntDistribution(1, 4)
    assert searched_parameters(sweep) == ["layers", "learning_rate", "pooling"]


def test_a_space_edited_since_the_sweep_falls_back_to_the_values(tmp_path):
    narrowed = {**SPACE, "parameters": {**SPACE["parameters"],
                                        "layers": {"type": "int", "low": 1, "high": 2}}}
    client, sweep_id = record_sweep(tmp_path, space=narrowed)
    sweep = read_sweep(client, sweep_id)
    study = study_from_trials(sweep.trials, sweep.mode, sweep.spec)  # layers=4 no longer fits
    assert study.trials[0].distributions["layers"] == IntDistribution(1, 4)


def test_sweep_figures_are_optunas_plots_and_learning_curves_coloured_by_status(recorded):
    client, sweep_id = recorded
    figures = sweep_figures(read_sweep(client, sweep_id))
    assert set(figures) == {"learning_curves.png", "optimization_history.png",
                            "param_importances.png", "parallel_coordinate.png"}
    curves = figures["learning_curves.png"].axes[0]
    colours = [line.get_color() for line in curves.lines]
    assert colours == [STATUS_COLOURS[status] for status, *_ in TRIALS]
    assert [t.get_text() for t in curves.get_legend().get_texts()] == [s for s, *_ in TRIALS]
    importance = figures["param_importances.png"].axes[0]
    assert {label.get_text() for label in importance.get_yticklabels()} == {"learning_rate", "layers", "pooling"}


def test_one_finished_trial_gives_no_importance_plot(recorded):
    client, sweep_id = recorded
    sweep = read_sweep(client, sweep_id)
    sweep.trials[:] = sweep.trials[:1]
    assert set(sweep_figures(sweep)) == {"learning_curves.png", "optimization_history.png",
                                         "parallel_coordinate.png"}


def test_log_sweep_plots_puts_png_files_on_the_sweep_run(recorded, tmp_path):
    client, sweep_id = recorded
    logged = log_sweep_plots(client, sweep_id)
    assert sorted(logged) == sorted(f"plots/{name}" for name in (
        "learning_curves.png", "optimization_history.png", "param_importances.png", "parallel_coordinate.png"))
    for path in logged:
        local = client.download_artifacts(sweep_id, path, str(tmp_path / "down"))
        image = Image.open(io.BytesIO(Path(local).read_bytes()))
        assert image.format == "PNG" and image.size[0] >= 500


def test_drawing_optuna_plots_leaves_matplotlib_style_alone(recorded):
    import matplotlib

    before = {key: matplotlib.rcParams[key] for key in ("axes.facecolor", "axes.grid", "axes.prop_cycle")}
    client, sweep_id = recorded
    sweep_figures(read_sweep(client, sweep_id))  # Optuna applies the ggplot style while drawing
    assert {key: matplotlib.rcParams[key] for key in before} == before
