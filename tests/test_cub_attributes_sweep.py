"""A real CLI sweep of the cub_attributes task: local Ray, sqlite MLflow, export, re-evaluation.

Slow (about a minute): 4 trials of the demo's image + attribute fusion classifier.
"""

import pytest

from tests.conftest import sweep_demo_and_export

CHANCE = 1 / 20  # 20 demo classes
MARGIN = 0.2  # the winner must beat chance by this much accuracy (5x chance)


@pytest.mark.slow
def test_sweep_beats_chance_without_failure_guards_and_exports_a_reproducible_winner(workdir):
    demo = sweep_demo_and_export("cub_attributes", workdir, trials=4, max_epochs=5,
                                 metric="val/accuracy")
    assert demo.trials[0].data.metrics["val/chance/accuracy"] == pytest.approx(CHANCE)
    assert demo.best >= CHANCE + MARGIN, (demo.best, CHANCE)
    for run in demo.trials:  # the modality probes are recorded every epoch
        assert demo.client.get_metric_history(run.info.run_id, "probe/image_shuffled/accuracy")
        assert "probe/attributes/attention_weight" in run.data.metrics
