"""modality_ignored: the metric does not need one input, on evidence that persists past the
first reports and is weighed against the val set's noise."""

import pytest

from orchestrator.health import HealthConfig, guard_coverage
from tests.health_histories import RECALLS, first_verdict, healthy_retrieval_history, history_of, only, run

ALONE = only("modality_ignored")

ACCURACY_BOUNDS = {"val/accuracy": (0.0, 1.0), "probe/*": (0.0, 1.0)}


def test_metric_unmoved_by_shuffling_images_is_a_modality_ignored():
    history = healthy_retrieval_history(7)
    for report in history:
        report["probe/image_shuffled/mean_r1"] = report["val/mean_r1"] - 0.005
    verdict = first_verdict(history)
    assert verdict.guard == "modality_ignored"
    assert verdict.epoch == 5  # warm-up of 3 reports, then reports 4-5 judged
    assert verdict.evidence["val/mean_r1"] == RECALLS[4]
    assert verdict.evidence["gain"] == pytest.approx(0.005)
    assert verdict.evidence["required_gain"] == pytest.approx(0.05 * (RECALLS[4] - 0.01))
    assert verdict.reason.startswith("the model ignores its image input: val/mean_r1 was 0.22 at "
                                     "epoch 5 and 0.215 with the image inputs shuffled, a gain of 0.005 < 0.0105")


@pytest.mark.parametrize(
    "real, shuffled",
    [(0.015, 0.001), (0.9, 0.85), (0.8, 0.76), (0.3, 0.01), (0.99, 0.983)],
    ids=["small-recall", "accuracy-with-strong-other-modality", "auroc", "retrieval",
         "near-the-ceiling-halving-the-error"],
)
def test_a_real_gain_over_the_shuffled_metric_is_fine(real, shuffled):
    history = history_of({"val/score": [real] * 6, "probe/image_shuffled/score": [shuffled] * 6})
    assert run(history, metric="val/score", bounds={"val/score": (0, 1)}, config=ALONE) is None


def test_a_model_that_learns_one_modality_first_is_not_stopped():
    # the detector of the issue: camera gain 0.007 at epoch 3 (under a fixed 0.02), 0.11 by epoch 8
    aurocs = [0.70, 0.82, 0.90, 0.93, 0.95, 0.97, 0.99, 0.999]
    camera_gains = [0.0, 0.002, 0.007, 0.012, 0.03, 0.06, 0.09, 0.11]
    history = history_of({
        "val/auroc": aurocs,
        "probe/camera_shuffled/auroc": [a - g for a, g in zip(aurocs, camera_gains)],
        "probe/lidar_shuffled/auroc": [0.5, 0.55, 0.6, 0.62, 0.65, 0.66, 0.68, 0.7],
    })
    assert first_verdict(history, metric="val/auroc", bounds={"val/auroc": (0, 1)}) is None


def test_a_gain_that_stays_at_zero_is_stopped_right_after_the_warm_up():
    history = history_of({"val/accuracy": [0.4, 0.5, 0.52, 0.52, 0.53, 0.53],
                          "probe/image_shuffled/accuracy": [0.4, 0.5, 0.52, 0.52, 0.53, 0.53]},
                         **{"val/chance/accuracy": 0.25})
    verdict = first_verdict(history, metric="val/accuracy", bounds=ACCURACY_BOUNDS)
    assert (verdict.guard, verdict.epoch) == ("modality_ignored", 5)


def test_the_required_gain_follows_the_val_set_size():
    # 10 classes, accuracy 0.5 and 0.484 with the images shuffled: a gain of 0.016 is 3 standard
    # errors on 10,000 samples, under a fixed 0.02 without the size, noise on 200 samples
    history = history_of({"val/accuracy": [0.5] * 6, "probe/image_shuffled/accuracy": [0.484] * 6},
                         **{"val/chance/accuracy": 0.1})
    assert run(history, metric="val/accuracy", bounds=ACCURACY_BOUNDS, config=ALONE).guard == "modality_ignored"
    for report in history:
        report["val/samples"] = 10000.0
    assert run(history, metric="val/accuracy", bounds=ACCURACY_BOUNDS, config=ALONE) is None
    for report in history:
        report["val/samples"] = 200.0
    verdict = run(history, metric="val/accuracy", bounds=ACCURACY_BOUNDS, config=ALONE)
    assert verdict.guard == "modality_ignored"


def test_a_model_at_chance_is_left_to_chance_level():
    history = history_of({"val/mean_r1": [0.01] * 6, "probe/image_shuffled/mean_r1": [0.01] * 6},
                         **{"val/chance/mean_r1": 0.01})
    assert first_verdict(history).guard == "chance_level"
    assert first_verdict(history, config=ALONE) is None


def test_the_modality_furthest_under_its_requirement_is_named_first():
    history = history_of({"val/accuracy": [0.8] * 6,
                          "probe/image_shuffled/accuracy": [0.79] * 6,
                          "probe/text_shuffled/accuracy": [0.8] * 6},
                         **{"val/chance/accuracy": 0.25})
    verdict = run(history, metric="val/accuracy", bounds=ACCURACY_BOUNDS, config=ALONE)
    assert verdict.reason.startswith("the model ignores its text input, and its image input too:")


def test_a_gain_equal_to_the_requirement_up_to_round_off_is_enough_and_reasons_never_contradict():
    # 0.35 - 0.34 is 0.009999999999999953 in floats; the requirement is min_absolute_gain 0.01
    config = only("modality_ignored", modality_ignored={"min_absolute_gain": 0.01, "min_share": 1.0})
    history = history_of({"val/score": [0.35] * 6, "probe/image_shuffled/score": [0.34] * 6})
    assert run(history, metric="val/score", bounds={}, config=config) is None
    history[-1]["probe/image_shuffled/score"] = history[-2]["probe/image_shuffled/score"] = 0.34000001
    verdict = run(history, metric="val/score", bounds={}, config=config)
    assert "a gain of 0.00999999 < 0.01" in verdict.reason


def test_modality_ignored_respects_mode_min_of_the_target():
    history = history_of({"val/mean_rank": [5.0] * 6, "probe/text_shuffled/mean_rank": [5.01] * 6})
    verdict = run(history, metric="val/mean_rank", mode="min", bounds={}, config=ALONE)
    assert (verdict.guard, verdict.epoch) == ("modality_ignored", 6)
    assert "text" in verdict.reason
    history[-1]["probe/text_shuffled/mean_rank"] = history[-2]["probe/text_shuffled/mean_rank"] = 40.0
    assert run(history, metric="val/mean_rank", mode="min", bounds={}, config=ALONE) is None


def test_coverage_flags_a_shuffled_probe_without_its_metric():
    report = {"val/accuracy": 0.8, "probe/image_shuffled/acc": 0.5,
              "probe/text_shuffled/accuracy": 0.4}
    coverage = guard_coverage(report, metric="val/accuracy", mode="max", value_bounds={},
                              config=HealthConfig())
    ignored = next(item for item in coverage if item.guard == "modality_ignored")
    assert ignored.active and ignored.watches == "text (accuracy)"
    assert ignored.gaps == ("probe/image_shuffled/acc has no val/acc beside it (misspelt?)",)
