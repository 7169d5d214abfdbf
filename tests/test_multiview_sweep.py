"""A real multiview sweep through the CLI: local Ray, sqlite MLflow, export and re-evaluation.

Slow (about a minute on 2 cores): 4 trials of a few epochs on the demo data, written on first use.
"""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

TRIALS = 4
MAX_EPOCHS = 4
CHANCE_AUROC = 0.5
# An untrained shared CNN already tells most random negatives apart by colour (val AUROC ~0.8);
# a trained one reaches ~0.9. 0.7 leaves room for slow machines while far from chance.
MIN_BEST_AUROC = 0.7


@pytest.mark.slow
def test_multiview_sweep_tracks_four_healthy_trials_and_exports_a_reproducible_winner(workdir):
    sweep = orchestrate("sweep", "--task", "multiview", "--trials", str(TRIALS),
                        "--max-epochs", str(MAX_EPOCHS), "--name", "t", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "writing the demo dataset" in sweep.stdout

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("multiview")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(trials) == TRIALS
    assert all(run.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for run in trials)
    # healthy demo trials: no failure guard may stop one (a plateau stop is not a failure)
    guards = [run.data.tags.get("orchestrate.guard") for run in trials]
    assert set(guards) <= {None, "plateau"}, guards

    best = max(run.data.metrics.get("best/val/auroc", 0.0) for run in trials)
    chance = trials[0].data.metrics["val/chance/auroc"]
    assert chance == CHANCE_AUROC
    assert best >= MIN_BEST_AUROC, (best, chance)
    assert all("val/threshold" in run.data.metrics for run in trials)

    export = orchestrate("best", "--task", "multiview", "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    metrics = json.loads((workdir / "winners" / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(best)

    evaluation = orchestrate("evaluate", "--model", "winners", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    assert abs(json.loads(evaluation.stdout)["auroc"] - metrics["value"]) <= 1e-3
