"""The tracker's presentation of runs on a real sqlite MLflow store, and the worker's figures."""

from __future__ import annotations

import io

import pytest
from matplotlib.figure import Figure
from mlflow.tracking import MlflowClient
from PIL import Image

from orchestrator.outcomes import OutcomeLedger, TrialOutcome
from orchestrator.plot_budget import PlotBudget
from orchestrator.run_presentation import COLOUR_TAG
from orchestrator.tracking.presentation import (
    closing_status, describe_sweep, description_tag, first_name, rename_trials,
)
from orchestrator.trial_figures import TrialFigures, save_figures


@pytest.fixture
def client(tmp_path):
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_trials_are_renamed_after_the_parameters_that_vary_and_coloured_apart(client):
    experiment = client.create_experiment("t")
    configs = [{"learning_rate": lr, "temperature": 0.07, "batch_size": b}
               for lr, b in [(3.1e-4, 32), (1e-3, 32), (2e-3, 64)]]
    for index, config in enumerate(configs, start=1):
        run = client.create_run(experiment, run_name=first_name(index, config, list(config)),
                                tags={"orchestrate.trial_id": f"trial{index}"})
        assert run.info.run_name.startswith(f"t{index:02d} lr=")
        for key, value in config.items():
            client.log_param(run.info.run_id, key, str(value))
    runs = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    names = rename_trials(client, runs, ["learning_rate", "temperature", "batch_size"])
    assert names == {"trial1": "t01 lr=3.1e-4 bs=32", "trial2": "t02 lr=1e-3 bs=32",
                     "trial3": "t03 lr=2e-3 bs=64"}
    stored = client.search_runs([experiment], order_by=["attributes.start_time ASC"])
    assert [run.info.run_name for run in stored] == list(names.values())
    colours = [run.data.tags[COLOUR_TAG] for run in stored]
    assert len(set(colours)) == 3


def test_a_guard_stop_closes_failed_and_the_sweep_summary_names_the_trial_and_the_guard(client):
    ledger = OutcomeLedger("val/r1", "max", 3)
    good = ledger.outcome("a", {})
    good.status, good.best_metric, good.best_epoch, good.epochs = "completed", 0.8, 3, 3
    bad = ledger.outcome("b", {})
    bad.status, bad.guard, bad.reason, bad.epochs = "stopped", "impossible_value", "loss below 0", 1
    assert closing_status(bad, "FINISHED") == "FAILED"
    assert closing_status(good, "FINISHED") == "FINISHED"
    assert closing_status(TrialOutcome("c", {}), "FAILED") == "FAILED"  # no verdict yet: Tune's
    assert description_tag(bad, "val/r1").value.startswith("**stopped** by guard `impossible_value`")
    interrupted = description_tag(TrialOutcome("c", {}), "val/r1", "interrupted", "Ctrl-C")
    assert interrupted.value.startswith("**interrupted**") and "Ctrl-C" in interrupted.value

    experiment = client.create_experiment("s")
    runs = [client.create_run(experiment, tags={"orchestrate.trial_id": trial_id}) for trial_id in "ab"]
    summary = describe_sweep("sw", ledger, runs, {"a": "t01 lr=0.1", "b": "t02 lr=1"})
    assert "**Winner**: `t01 lr=0.1`" in summary
    assert "`t02 lr=1` stopped by `impossible_value`: loss below 0" in summary


class _PlottingTask:
    name = "plotting"

    def figures(self, setup, split):
        figure = Figure(figsize=(4, 3))
        figure.add_subplot().plot([0, 1], [setup, 1 - setup])
        return {"line": figure}


class _BrokenPlottingTask:
    name = "broken"

    def figures(self, setup, split):
        raise RuntimeError("no data for a curve")


def test_the_worker_draws_the_tasks_figures_and_the_probes_and_skips_a_broken_figure(tmp_path):
    history = [{"epoch": e, "probe/image/offdiag_cosine": 0.1 * e, "val/r1": 0.2 * e} for e in (1, 2)]
    pngs = TrialFigures().draw(_PlottingTask(), 0.3, history)
    assert set(pngs) == {"line.png", "health_probes.png"}
    assert Image.open(io.BytesIO(pngs["line.png"])).size == (400, 300)
    assert set(TrialFigures().draw(_BrokenPlottingTask(), None, history)) == {"health_probes.png"}
    save_figures(tmp_path, pngs)
    assert sorted(p.name for p in (tmp_path / "plots").iterdir()) == ["health_probes.png", "line.png"]


def test_figures_are_drawn_on_a_new_best_within_budget_and_on_a_stop():
    figures = TrialFigures(PlotBudget(share=0.1, first_cost=1.0))
    figures.add_epoch(2.0)
    assert not figures.due(new_best=True, stopped=False)  # 1 s > 10% of 2 s
    assert figures.due(new_best=False, stopped=True)
    figures.add_epoch(20.0)
    assert figures.due(new_best=True, stopped=False)
    assert not figures.due(new_best=False, stopped=False)
