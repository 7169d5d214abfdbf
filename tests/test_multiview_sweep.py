"""A real multiview sweep through the CLI: local Ray, sqlite MLflow, export and re-evaluation.

Slow (about a minute on 2 cores): 4 trials of a few epochs on the demo data, written on first use.
"""

import pytest

from tests.conftest import sweep_demo_and_export

CHANCE_AUROC = 0.5
# An untrained shared CNN already tells most random negatives apart by colour (val AUROC ~0.8);
# a trained one reaches ~0.9. 0.7 leaves room for slow machines while far from chance.
MIN_BEST_AUROC = 0.7


@pytest.mark.slow
def test_multiview_sweep_tracks_four_healthy_trials_and_exports_a_reproducible_winner(workdir):
    demo = sweep_demo_and_export("multiview", workdir, trials=4, max_epochs=4, metric="val/auroc")
    assert demo.trials[0].data.metrics["val/chance/auroc"] == CHANCE_AUROC
    assert demo.best >= MIN_BEST_AUROC, demo.best
    assert all("val/threshold" in run.data.metrics for run in demo.trials)
