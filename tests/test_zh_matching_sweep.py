"""A real zh_matching sweep through the CLI: local Ray, sqlite MLflow, demo data, export, re-evaluation.

Slow (about a minute on 2 cores): it trains real SCAN matchers on the ~100 MB demo dataset.
"""

import pytest

from tests.conftest import sweep_demo_and_export

VAL_IMAGES = 50  # the demo's dev split: chance R@1 is 1 / 50 = 0.02
MARGIN_OVER_CHANCE = 10  # the winner must reach at least 10 x chance (0.2)


@pytest.mark.slow
def test_zh_matching_sweep_tracks_four_healthy_trials_beats_chance_and_exports(workdir):
    demo = sweep_demo_and_export("zh_matching", workdir, trials=4, max_epochs=3, metric="val/mean_r1")
    chance = demo.trials[0].data.metrics["val/chance/mean_r1"]
    assert chance == pytest.approx(1 / VAL_IMAGES)
    assert demo.best >= MARGIN_OVER_CHANCE * chance, (demo.best, chance)
