"""How much a val metric moves by noise: sampling noise from the val set's size, scatter from
the reports."""

import math

import pytest

from orchestrator.health import TrialFacts
from orchestrator.health.noise import line_fit, standard_error

FACTS = TrialFacts("val/accuracy", "max", {"val/*": (0.0, 1.0)})


def test_a_reported_standard_error_is_taken_as_is():
    report = {"val/accuracy": 0.8, "val/stderr/accuracy": 0.013, "val/samples": 10.0}
    assert standard_error("val/accuracy", report, FACTS) == 0.013


def test_a_fraction_metrics_standard_error_is_binomial_in_the_sample_count():
    report = {"val/accuracy": 0.8, "val/samples": 400.0}
    assert standard_error("val/accuracy", report, FACTS) == pytest.approx(math.sqrt(0.8 * 0.2 / 400))
    assert standard_error("val/accuracy", report, FACTS, at=0.5) == pytest.approx(0.025)


def test_an_aurocs_standard_error_at_chance_is_hanley_and_mcneils():
    # at AUROC 0.5: sqrt((n_pos + n_neg + 1) / (12 n_pos n_neg))
    balanced = {"val/auroc": 0.5, "val/samples": 200.0}
    assert standard_error("val/auroc", balanced, FACTS) == pytest.approx(math.sqrt(201 / (12 * 100 * 100)))
    rare = {"val/auroc": 0.5, "val/samples": 200.0, "val/majority_rate": 0.9}
    assert standard_error("val/auroc", rare, FACTS) == pytest.approx(math.sqrt(201 / (12 * 20 * 180)))
    by_auprc_chance = {"val/auroc": 0.5, "val/samples": 200.0, "val/chance/auprc": 0.1}
    assert standard_error("val/auroc", by_auprc_chance, FACTS) == pytest.approx(standard_error("val/auroc", rare, FACTS))
    assert standard_error("val/auroc", {**balanced, "val/samples": 10000.0}, FACTS) < 0.006


def test_no_standard_error_without_a_size_or_for_a_metric_that_is_not_a_fraction():
    assert standard_error("val/accuracy", {"val/accuracy": 0.8}, FACTS) is None
    assert standard_error("val/rsum", {"val/rsum": 3.2, "val/samples": 100.0},
                          TrialFacts("val/rsum", "max", {"val/rsum": (0.0, 6.0)})) is None


def test_line_fit_separates_a_trend_from_its_scatter():
    slope, scatter = line_fit([0.1, 0.2, 0.3, 0.4, 0.5])
    assert slope == pytest.approx(0.1) and scatter == pytest.approx(0.0, abs=1e-12)
    slope, scatter = line_fit([0.25, 0.27, 0.25, 0.27, 0.25, 0.27])
    assert abs(slope) < 0.003 and 0.005 < scatter < 0.02
    assert line_fit([0.1, 0.2, 0.3]) is None


def test_a_single_jump_does_not_read_as_noise():
    _, scatter = line_fit([0.30, 0.31, 0.30, 0.31, 0.011])
    assert scatter < 0.02
