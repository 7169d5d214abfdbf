"""A real anomaly sweep through the CLI: local Ray, sqlite MLflow, Optuna, ASHA, export, re-evaluate.

Slow: it trains 4 small real detectors on the demo data (written on first use).
"""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

TRIALS = 4
CHANCE_AUROC = 0.5
MARGIN = 0.25  # the demo's winner reaches about 0.95-1.0; a broken pipeline sits near 0.5


@pytest.mark.slow
def test_anomaly_sweep_beats_chance_without_failure_guards_and_exports_a_reproducible_winner(workdir):
    sweep = orchestrate("sweep", "--task", "anomaly", "--trials", str(TRIALS), "--max-epochs", "3",
                        "--name", "t", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "writing the demo dataset" in sweep.stdout

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anomaly")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(trials) == TRIALS
    assert all(run.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for run in trials)
    guards = [run.data.tags.get("orchestrate.guard") for run in trials]
    assert set(guards) <= {None, "plateau"}, [run.data.tags.get("orchestrate.reason") for run in trials]

    best = max(run.data.metrics.get("best/val/auroc", 0.0) for run in trials)
    assert trials[0].data.metrics["val/chance/auroc"] == CHANCE_AUROC
    assert best >= CHANCE_AUROC + MARGIN, best
    # accuracy is never reported without the majority-class rate beside it
    assert all("val/majority_rate" in run.data.metrics for run in trials)

    export = orchestrate("best", "--task", "anomaly", "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    metrics = json.loads((workdir / "winners" / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(best)

    evaluation = orchestrate("evaluate", "--model", "winners", "--split", "val", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    assert abs(json.loads(evaluation.stdout)["auroc"] - metrics["value"]) <= 1e-3
