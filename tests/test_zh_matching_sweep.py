"""A real zh_matching sweep through the CLI: local Ray, sqlite MLflow, demo data, export,
re-evaluation on val and on testall (COCO 5K-style whole split and its 5-fold average).

Slow (about a minute on 2 cores): it trains real SCAN matchers on the ~145 MB demo dataset.
"""

import json

import pytest

from tests.conftest import orchestrate, sweep_demo_and_export

VAL_IMAGES = 100  # the demo's dev split: chance R@1 is 1 / 100 = 0.01
TESTALL_IMAGES = 100  # the demo's testall: 5 folds of 20 images
MARGIN_OVER_CHANCE = 10  # the winner must reach at least 10 x chance (0.1)


@pytest.mark.slow
def test_zh_matching_sweep_tracks_four_healthy_trials_beats_chance_and_exports(workdir):
    demo = sweep_demo_and_export("zh_matching", workdir, trials=4, max_epochs=3, metric="val/mean_r1")
    chance = demo.trials[0].data.metrics["val/chance/mean_r1"]
    assert chance == pytest.approx(1 / VAL_IMAGES)
    assert demo.best >= MARGIN_OVER_CHANCE * chance, (demo.best, chance)

    testall = orchestrate("evaluate", "--model", "winners", "--split", "testall", cwd=workdir)
    assert testall.returncode == 0, testall.stderr
    metrics = json.loads(testall.stdout)
    assert metrics["chance/mean_r1"] == pytest.approx(1 / TESTALL_IMAGES)
    assert metrics["fold5/chance/mean_r1"] == pytest.approx(5 / TESTALL_IMAGES)
    # The demo's splits are drawn alike, so the winner is well above chance on testall too,
    # and each fold (20 images) is easier than the whole split (100 images).
    assert metrics["mean_r1"] >= MARGIN_OVER_CHANCE * metrics["chance/mean_r1"]
    assert metrics["fold5/mean_r1"] >= metrics["mean_r1"]
