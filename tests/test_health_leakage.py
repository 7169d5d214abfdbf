"""leakage: a score too good to be true (one modality alone at the ceiling, or beyond what the
task declares plausible) is a failure whose trials are never winners."""

import pytest
from pydantic import ValidationError

from orchestrator.health import HealthConfig, guard_coverage
from tests.health_histories import first_verdict, history_of, only, run

BOUNDS = {"val/accuracy": (0.0, 1.0), "val/auroc": (0.0, 1.0)}
CLASSES = {"val/chance/accuracy": 0.005}  # 200 bird classes


def classifier(accuracy, image_shuffled, attributes_shuffled, **extra):
    return history_of({"val/accuracy": accuracy, "probe/image_shuffled/accuracy": image_shuffled,
                       "probe/attributes_shuffled/accuracy": attributes_shuffled}, **CLASSES, **extra)


def test_class_level_attributes_reaching_the_ceiling_alone_are_a_leak():
    history = classifier([0.6, 1.0, 1.0, 1.0], [0.3, 0.998, 1.0, 1.0], [0.4, 0.5, 0.5, 0.5])
    verdict = first_verdict(history, metric="val/accuracy", bounds=BOUNDS)
    assert (verdict.guard, verdict.epoch, verdict.is_failure) == ("leakage", 3, True)
    assert verdict.evidence == {"val/accuracy": 1.0, "probe/image_shuffled/accuracy": 1.0,
                                "best_possible": 1.0}
    assert "still 1 with the image inputs shuffled, on 2 reports in a row: the attributes inputs " \
           "alone decide the samples" in verdict.reason
    for hint in ("class-level attributes", "val samples drawn from the training set",
                 "duplicated across splits"):
        assert hint in verdict.reason


def test_a_carrier_whose_shuffle_drops_the_metric_to_chance_is_a_leak():
    # the fused model is disturbed by a wrong image (0.86), but a wrong attribute vector
    # overrules the right image entirely: accuracy falls to chance
    history = classifier([0.9, 1.0, 1.0], [0.8, 0.86, 0.88], [0.01, 0.006, 0.005])
    verdict = first_verdict(history, metric="val/accuracy", bounds=BOUNDS)
    assert (verdict.guard, verdict.epoch) == ("leakage", 3)
    assert "but 0.005 (chance 0.005) with the attributes inputs shuffled" in verdict.reason
    assert "the attributes inputs alone decide the samples" in verdict.reason


def test_healthy_models_at_or_near_the_ceiling_are_not_leaks():
    # both inputs needed: each shuffle costs half the score
    assert first_verdict(classifier([1.0] * 4, [0.5] * 4, [0.5] * 4), metric="val/accuracy",
                         bounds=BOUNDS, config=only("leakage")) is None
    # the detector: AUROC 0.999 with a camera gain of 0.11, LiDAR alone not at chance
    detector = history_of({"val/auroc": [0.999] * 3, "probe/camera_shuffled/auroc": [0.889] * 3,
                           "probe/lidar_shuffled/auroc": [0.7] * 3})
    assert first_verdict(detector, metric="val/auroc", bounds=BOUNDS, config=only("leakage")) is None
    # the anomaly demo's best epoch: each sensor alone far from the ceiling
    anomaly = history_of({"val/auroc": [0.9948, 0.9965, 0.9965], "probe/image_shuffled/auroc": [0.58, 0.62, 0.62],
                          "probe/points_shuffled/auroc": [0.8, 0.82, 0.82]})
    assert first_verdict(anomaly, metric="val/auroc", bounds=BOUNDS, config=only("leakage")) is None


def test_one_report_at_the_ceiling_is_not_yet_evidence():
    history = classifier([0.6, 1.0], [0.3, 1.0], [0.4, 0.005])
    assert first_verdict(history, metric="val/accuracy", bounds=BOUNDS) is None


def test_a_ceiling_counts_one_sample_short_when_the_val_size_is_known():
    history = classifier([1 - 1 / 128] * 2, [1 - 1 / 128] * 2, [0.3] * 2)
    assert run(history, metric="val/accuracy", bounds=BOUNDS, config=only("leakage")) is None
    for report in history:
        report["val/samples"] = 128.0
    assert run(history, metric="val/accuracy", bounds=BOUNDS).guard == "leakage"


def test_a_metric_above_the_plausible_maximum_the_task_declares_is_a_leak():
    history = history_of({"val/accuracy": [0.7, 0.97, 0.99]})
    verdict = first_verdict(history, metric="val/accuracy", bounds=BOUNDS,
                            plausible_max={"val/accuracy": 0.9})
    assert (verdict.guard, verdict.epoch) == ("leakage", 3)
    assert verdict.evidence == {"val/accuracy": 0.99, "plausible_max": 0.9}
    assert "0.97, 0.99 over epochs 2-3, above 0.9, the most this task declares plausible" in verdict.reason
    assert first_verdict(history[:2] + [{"val/accuracy": 0.85, "training_iteration": 3}],
                         metric="val/accuracy", bounds=BOUNDS, plausible_max={"val/accuracy": 0.9}) is None


def test_a_search_space_overrides_or_removes_the_tasks_plausible_maximum():
    history = history_of({"val/accuracy": [0.7, 0.97, 0.99]})
    raised = HealthConfig(leakage={"plausible_max": {"val/accuracy": 0.995}})
    assert first_verdict(history, metric="val/accuracy", bounds=BOUNDS, config=raised,
                         plausible_max={"val/accuracy": 0.9}) is None
    removed = HealthConfig(leakage={"plausible_max": {"val/accuracy": None}})
    assert first_verdict(history, metric="val/accuracy", bounds=BOUNDS, config=removed,
                         plausible_max={"val/accuracy": 0.9}) is None
    added = HealthConfig(leakage={"plausible_max": {"val/accuracy": 0.95}})
    assert first_verdict(history, metric="val/accuracy", bounds=BOUNDS, config=added).guard == "leakage"
    with pytest.raises(ValidationError, match="must be a reported key"):
        HealthConfig(leakage={"plausible_max": {"accuracy": 0.9}})


def test_leakage_is_judged_before_an_ignored_modality():
    # attributes alone decide: the images are ignored too, but the leak is the diagnosis
    history = classifier([1.0] * 6, [1.0] * 6, [0.3] * 6)
    history[0]["val/accuracy"] = 0.5
    assert first_verdict(history, metric="val/accuracy", bounds=BOUNDS).guard == "leakage"


def test_coverage_reports_which_evidence_the_guard_can_see():
    report = {"val/accuracy": 0.5, "probe/image_shuffled/accuracy": 0.3}
    coverage = {item.guard: item for item in guard_coverage(
        report, metric="val/accuracy", mode="max", value_bounds=BOUNDS, config=HealthConfig())}
    assert coverage["leakage"].active
    assert coverage["leakage"].watches == "val/accuracy with image shuffled"
    assert coverage["leakage"].gaps == ("beyond plausible: no plausible_max declared by the task or the space",)
    blind = {item.guard: item for item in guard_coverage(
        {"val/score": 3.0}, metric="val/score", mode="max", value_bounds={}, config=HealthConfig())}
    assert not blind["leakage"].active
