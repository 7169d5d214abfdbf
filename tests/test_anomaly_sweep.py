"""A real anomaly sweep through the CLI: local Ray, sqlite MLflow, Optuna, ASHA, export, re-evaluate.

Slow: it trains 4 small real detectors on the demo data (written on first use).
"""

import pytest

from tests.conftest import sweep_demo_and_export

CHANCE_AUROC = 0.5
MARGIN = 0.25  # the demo's winner reaches about 0.95-1.0; a broken pipeline sits near 0.5


@pytest.mark.slow
def test_anomaly_sweep_beats_chance_without_failure_guards_and_exports_a_reproducible_winner(workdir):
    demo = sweep_demo_and_export("anomaly", workdir, trials=4, max_epochs=3, metric="val/auroc")
    assert demo.trials[0].data.metrics["val/chance/auroc"] == CHANCE_AUROC
    assert demo.best >= CHANCE_AUROC + MARGIN, demo.best
    # accuracy is never reported without the majority-class rate beside it
    assert all("val/majority_rate" in run.data.metrics for run in demo.trials)
