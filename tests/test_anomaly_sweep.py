"""A real anomaly sweep through the CLI: local Ray, sqlite MLflow, Optuna, ASHA, export, re-evaluate.

Slow: it trains 4 small real detectors on the demo data (written on first use, in AnoVox's
released layout), and one detector on a small released-layout AnoVox tree given as --data-dir.
"""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate, place_demo_encoders, sweep_demo_and_export
from tests.fixtures.anovox import trees

CHANCE_AUROC = 0.5
MARGIN = 0.25  # full-budget winners reach ~0.9 (bench/demo_spread.py); a broken pipeline sits near 0.5


@pytest.mark.slow
def test_anomaly_sweep_beats_chance_without_failure_guards_and_exports_a_reproducible_winner(workdir):
    demo = sweep_demo_and_export("anomaly", workdir, trials=4, max_epochs=3, metric="val/auroc")
    assert demo.trials[0].data.metrics["val/chance/auroc"] == CHANCE_AUROC
    assert demo.best >= CHANCE_AUROC + MARGIN, demo.best
    # accuracy is never reported without the majority-class rate beside it
    assert all("val/majority_rate" in run.data.metrics for run in demo.trials)


@pytest.mark.slow
def test_one_trial_one_epoch_sweep_on_a_released_anovox_tree(workdir):
    trees.write_released(workdir / "anovox", scenarios=12, frames=2)
    place_demo_encoders(workdir / "anovox")  # the default space's image_weights
    result = orchestrate("sweep", "--figures-of-best", "0", "--task", "anomaly", "--data-dir", "anovox", "--trials", "1",
                         "--max-epochs", "1", "--name", "t", cwd=workdir)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "[anomaly] data: AnoVox as released" in result.stdout
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("anomaly")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert run.data.tags["orchestrate.status"] not in ("stopped", "failed"), run.data.tags
    assert 0.0 <= run.data.metrics["val/auroc"] <= 1.0
