"""A real CLI sweep of the cub_attributes task: local Ray, sqlite MLflow, export, re-evaluation.

Slow (about a minute): 4 trials of the demo's image + attribute fusion classifier.
"""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

TRIALS = 4
MAX_EPOCHS = 5
CHANCE = 1 / 20  # 20 demo classes
MARGIN = 0.2  # the winner must beat chance by this much accuracy (5x chance)


@pytest.mark.slow
def test_sweep_beats_chance_without_failure_guards_and_exports_a_reproducible_winner(
    workdir
):
    sweep = orchestrate(
        "sweep", "--task", "cub_attributes", "--trials", str(TRIALS),
        "--max-epochs", str(MAX_EPOCHS), "--name", "t", cwd=workdir,
    )
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "writing the demo dataset" in sweep.stdout

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("cub_attributes")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(trials) == TRIALS
    assert all(run.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for run in trials)
    guards = [run.data.tags.get("orchestrate.guard") for run in trials]
    assert set(guards) <= {None, "plateau"}, guards

    best = max(run.data.metrics.get("best/val/accuracy", 0.0) for run in trials)
    assert trials[0].data.metrics["val/chance/accuracy"] == pytest.approx(CHANCE)
    assert best >= CHANCE + MARGIN, (best, CHANCE)
    for run in trials:  # the modality probes are recorded every epoch
        assert client.get_metric_history(run.info.run_id, "probe/image_shuffled/accuracy")
        assert "probe/attributes/attention_weight" in run.data.metrics

    export = orchestrate("best", "--task", "cub_attributes", "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    metrics = json.loads((workdir / "winners" / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(best)

    evaluation = orchestrate("evaluate", "--model", "winners", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    assert abs(json.loads(evaluation.stdout)["accuracy"] - metrics["value"]) <= 1e-3
