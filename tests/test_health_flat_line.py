"""flat_line: a training loss that does not move, or sits at exactly 0, stops the trial."""

import pytest

from orchestrator.health import HealthConfig
from tests.health_histories import first_verdict, healthy_retrieval_history, run


def test_loss_unchanged_over_the_window_is_a_flat_line():
    history = healthy_retrieval_history(6)
    for report, loss in zip(history, [2.0, 1.7, 1.386294, 1.386294 * (1 + 1e-8), 1.386294]):
        report["train/loss"] = loss
    verdict = first_verdict(history)
    assert verdict.guard == "flat_line"
    assert verdict.epoch == 5
    assert verdict.evidence["train/loss"] == pytest.approx(1.386294)
    assert verdict.evidence["window_reports"] == 3
    assert verdict.evidence["spread"] < 1e-6
    assert "from epoch 3 to 5" in verdict.reason


def test_loss_exactly_zero_from_the_first_report_is_caught_on_the_second():
    history = healthy_retrieval_history(4)
    for report in history:
        report["train/loss"] = 0.0
    verdict = first_verdict(history)
    assert verdict.guard == "flat_line"
    assert verdict.epoch == 2
    assert verdict.evidence == {"train/loss": 0.0, "reports": 2.0}
    assert "exactly 0" in verdict.reason


def test_loss_reaching_zero_once_after_training_is_not_a_flat_line():
    history = healthy_retrieval_history(3)
    history[2]["train/loss"] = 0.0
    assert run(history) is None


def test_loss_collapsing_to_exactly_zero_mid_training_is_caught_on_its_second_zero():
    history = healthy_retrieval_history(5)
    history[2]["train/loss"] = 0.0
    history[3]["train/loss"] = 0.0
    verdict = first_verdict(history)
    assert verdict.guard == "flat_line" and verdict.epoch == 4
    assert verdict.evidence == {"train/loss": 0.0, "reports": 2.0}
    assert "on the last 2 reports" in verdict.reason


def test_flat_line_window_is_configurable():
    history = healthy_retrieval_history(5)
    history[3]["train/loss"] = history[4]["train/loss"] = 1.5
    config = HealthConfig(flat_line={"window_reports": 2})
    verdict = run(history, config=config)
    assert (verdict.guard, verdict.epoch) == ("flat_line", 5)
    assert run(history) is None  # two equal reports are under the default window of 3
