"""chance_level: validation metrics no better than chance after a warm-up, judged against the
val set's own noise when the task reports its size."""

import pytest

from orchestrator.health import HealthConfig, guard_coverage
from tests.health_histories import (
    first_verdict, healthy_classification_history, healthy_retrieval_history, history_of, only, run,
)

AUROC_BOUNDS = {"val/auroc": (0.0, 1.0), "val/accuracy": (0.0, 1.0)}


def test_recall_at_chance_after_the_warm_up_is_a_failure():
    history = healthy_retrieval_history(5)
    for report in history:
        report["val/mean_r1"] = 0.012
        report["probe/image_shuffled/mean_r1"] = 0.0  # so only the chance guard applies
        report["probe/text_shuffled/mean_r1"] = 0.0
    verdict = first_verdict(history)
    assert verdict.guard == "chance_level"
    assert verdict.epoch == 3  # report 1 is the warm-up, reports 2-3 the judged window
    assert verdict.evidence == {"val/mean_r1": 0.012, "val/chance/mean_r1": 0.01,
                                "mean": pytest.approx(0.012), "margin": pytest.approx(0.005)}
    assert "averaged 0.012 over epochs 2-3 (0.012, 0.012), within 0.005 of its chance level 0.01" \
        in verdict.reason
    assert "a fixed margin: the task reports no val/samples" in verdict.reason


def test_auroc_near_half_is_chance_level():
    history = healthy_classification_history(4)
    for report in history:
        report["val/auroc"] = 0.52
    verdict = first_verdict(history, metric="val/accuracy")
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert verdict.evidence == {"val/auroc": 0.52, "mean": pytest.approx(0.52),
                                "margin": pytest.approx(0.05)}


def test_auroc_wandering_on_both_sides_of_half_is_no_signal_not_inverted_scores():
    history = history_of({"val/auroc": [0.5, 0.44, 0.57, 0.47]})
    verdict = first_verdict(history, metric="val/auroc", bounds=AUROC_BOUNDS)
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert "averaged 0.505 over epochs 2-3 (0.44, 0.57)" in verdict.reason
    assert "carry no signal" in verdict.reason and "inverted" not in verdict.reason
    below = history_of({"val/auroc": [0.5, 0.46, 0.43]})
    verdict = first_verdict(below, metric="val/auroc", bounds=AUROC_BOUNDS)
    assert "carry no signal" in verdict.reason and "negatives above positives" not in verdict.reason


def test_auroc_far_below_half_on_every_report_is_called_inverted():
    history = history_of({"val/auroc": [0.3, 0.22, 0.19]})
    verdict = first_verdict(history, metric="val/auroc", bounds=AUROC_BOUNDS)
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert "rank negatives above positives" in verdict.reason


def test_high_accuracy_that_is_the_majority_rate_is_chance_level():
    history = healthy_classification_history(4)
    for report in history:
        report["val/accuracy"] = 0.90
        report["val/majority_rate"] = 0.90
        report["probe/image_shuffled/accuracy"] = 0.0
    verdict = first_verdict(history, metric="val/accuracy")
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert verdict.evidence["val/majority_rate"] == 0.90
    assert "not above the majority-class rate 0.9" in verdict.reason


def test_binary_accuracy_well_above_chance_half_is_not_chance_level():
    # 1.5 x 0.5 would call 0.7 "chance"; the margin is capped by the declared ceiling 1.
    history = history_of({"val/accuracy": [0.7, 0.7, 0.7]}, **{"val/chance/accuracy": 0.5})
    assert run(history, metric="val/accuracy", bounds={"val/accuracy": (0, 1)}) is None
    history[-1]["val/accuracy"] = history[-2]["val/accuracy"] = 0.53
    verdict = run(history, metric="val/accuracy", bounds={"val/accuracy": (0, 1)})
    assert verdict.guard == "chance_level"
    assert verdict.evidence["margin"] == pytest.approx(0.05)


def test_a_model_that_just_started_to_learn_is_left_alone():
    # the window's mean is within the band, but the latest report is clearly above chance
    history = history_of({"val/auroc": [0.5, 0.49, 0.62]})
    assert first_verdict(history, metric="val/auroc", bounds=AUROC_BOUNDS) is None


def test_the_margin_follows_the_val_set_size_tighter_on_10000_samples_than_200():
    # AUROC 0.53 then 0.54: within noise of chance on 200 balanced samples (standard error
    # 0.041), 6 standard errors above it on 10,000
    history = history_of({"val/auroc": [0.5, 0.53, 0.54]})
    for report in history:
        report["val/samples"] = 200.0
    verdict = run(history, metric="val/auroc", bounds=AUROC_BOUNDS)
    assert verdict.guard == "chance_level" and "standard errors on 200 val samples" in verdict.reason
    for report in history:
        report["val/samples"] = 10000.0
    assert run(history, metric="val/auroc", bounds=AUROC_BOUNDS) is None
    assert run(history, metric="val/auroc", bounds=AUROC_BOUNDS,
               config=HealthConfig(chance_level={"noise_sigmas": 10})).guard == "chance_level"


def test_a_small_val_sets_noise_widens_the_fixed_margin():
    # R@1 over 200 images at chance 0.005: 2.2 hits where 1 is expected is noise, though it is
    # more than 1.5 x chance (the fixed margin without the val set's size)
    history = history_of({"val/mean_r1": [0.004, 0.010, 0.012]}, **{"val/chance/mean_r1": 0.005})
    assert run(history) is None
    for report in history:
        report["val/samples"] = 200.0
    verdict = run(history)
    assert verdict.guard == "chance_level" and verdict.evidence["margin"] == pytest.approx(0.00705, abs=1e-4)


def test_mode_min_target_at_chance_flips_the_direction():
    history = history_of({"val/error": [0.5, 0.49, 0.51]}, **{"val/chance/error": 0.5})
    verdict = run(history, metric="val/error", mode="min", bounds={"val/error": (0, 1)})
    assert verdict.guard == "chance_level"
    history[-1]["val/error"] = history[-2]["val/error"] = 0.2
    assert run(history, metric="val/error", mode="min", bounds={"val/error": (0, 1)}) is None


def test_detector_that_ranks_well_but_thresholds_badly_is_not_at_chance():
    history = healthy_retrieval_history(4)
    for report in history:
        report.update({"val/accuracy": 0.90, "val/majority_rate": 0.90, "val/auroc": 0.93})
    assert run(history, metric="val/auroc") is None
    for report in history:
        report["val/auroc"] = 0.51
    assert run(history, metric="val/auroc").guard == "chance_level"


def test_coverage_says_whether_the_val_set_noise_is_known():
    report = {"val/auroc": 0.7, "val/accuracy": 0.8, "val/majority_rate": 0.7}
    coverage = guard_coverage(report, metric="val/auroc", mode="max", value_bounds=AUROC_BOUNDS,
                              config=HealthConfig())
    chance = next(item for item in coverage if item.guard == "chance_level")
    assert chance.active and "auroc" in chance.watches and "accuracy vs majority_rate" in chance.watches
    assert any("no val/samples" in gap for gap in chance.gaps)
    report["val/samples"] = 500.0
    coverage = guard_coverage(report, metric="val/auroc", mode="max", value_bounds=AUROC_BOUNDS,
                              config=HealthConfig())
    assert next(item for item in coverage if item.guard == "chance_level").gaps == ()


# Val reports 1-3 of a real anomaly demo trial (bench/demo_spread.py --seed 1: learning rate
# 1.6e-4, 128 points, image encoder frozen for 2 epochs): a slow learner whose AUROC is clearly
# above chance while its AUPRC, on 36 anomalous scenes of 105, is still within noise of the
# positive rate.
SLOW_DETECTOR = {
    "val/auroc": [0.5660, 0.5753, 0.6329],
    "val/auprc": [0.3815, 0.3778, 0.4203],
    "val/accuracy": [0.4762, 0.5429, 0.5619],
}
DETECTOR_BOUNDS = {"val/auroc": (0.0, 1.0), "val/auprc": (0.0, 1.0), "val/accuracy": (0.0, 1.0)}
DETECTOR_CONSTANTS = {"val/chance/auroc": 0.5, "val/chance/auprc": 0.3429,
                      "val/majority_rate": 0.6571, "val/samples": 105.0}


def test_a_secondary_metric_near_chance_does_not_stop_scores_that_rank_above_chance():
    history = history_of(SLOW_DETECTOR, **DETECTOR_CONSTANTS)
    assert first_verdict(history, metric="val/auroc", bounds=DETECTOR_BOUNDS,
                         config=only("chance_level")) is None


def test_a_secondary_metric_at_chance_still_stops_scores_at_chance():
    weak = {**SLOW_DETECTOR, "val/auroc": [0.52, 0.50, 0.53]}
    verdict = first_verdict(history_of(weak, **DETECTOR_CONSTANTS), metric="val/auroc",
                            bounds=DETECTOR_BOUNDS, config=only("chance_level"))
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert {"val/auroc", "val/auprc"} & set(verdict.evidence)


def test_a_target_metric_at_chance_stops_even_when_an_auroc_ranks_well():
    history = history_of(SLOW_DETECTOR, **DETECTOR_CONSTANTS)
    verdict = first_verdict(history, metric="val/auprc", bounds=DETECTOR_BOUNDS,
                            config=only("chance_level"))
    assert (verdict.guard, verdict.epoch) == ("chance_level", 3)
    assert "val/auprc averaged 0.3991 over epochs 2-3" in verdict.reason
