"""A real zh_matching sweep through the CLI: local Ray, sqlite MLflow, demo data, export, re-evaluation.

Slow (about a minute on 2 cores): it trains real SCAN matchers on the ~100 MB demo dataset.
"""

import json

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

TRIALS = 4
MAX_EPOCHS = 3
VAL_IMAGES = 50  # the demo's dev split: chance R@1 is 1 / 50 = 0.02
MARGIN_OVER_CHANCE = 10  # the winner must reach at least 10 x chance (0.2)


@pytest.mark.slow
def test_zh_matching_sweep_tracks_four_healthy_trials_beats_chance_and_exports(workdir):
    sweep = orchestrate("sweep", "--task", "zh_matching", "--trials", str(TRIALS),
                        "--max-epochs", str(MAX_EPOCHS), "--name", "t", cwd=workdir)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "writing the demo dataset" in sweep.stdout

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("zh_matching")
    sweeps = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'")
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(sweeps) == 1 and len(trials) == TRIALS
    assert all(run.data.tags["mlflow.parentRunId"] == sweeps[0].info.run_id for run in trials)
    guards = [run.data.tags.get("orchestrate.guard") for run in trials]
    assert set(guards) <= {None, "plateau"}, [run.data.tags.get("orchestrate.reason") for run in trials]

    chance = trials[0].data.metrics["val/chance/mean_r1"]
    assert chance == pytest.approx(1 / VAL_IMAGES)
    best = max(run.data.metrics.get("best/val/mean_r1", 0.0) for run in trials)
    assert best >= MARGIN_OVER_CHANCE * chance, (best, chance)

    export = orchestrate("best", "--task", "zh_matching", "--out", "winners", cwd=workdir)
    assert export.returncode == 0, export.stderr
    metrics = json.loads((workdir / "winners" / "metrics.json").read_text())
    assert metrics["value"] == pytest.approx(best)
    evaluation = orchestrate("evaluate", "--model", "winners", cwd=workdir)
    assert evaluation.returncode == 0, evaluation.stderr
    assert abs(json.loads(evaluation.stdout)["mean_r1"] - metrics["value"]) <= 1e-3
