"""impossible_value: a value outside the task's declared bounds means the code is wrong."""

from orchestrator.health import HealthConfig, guard_coverage
from tests.health_histories import INF, first_verdict, healthy_retrieval_history, run


def test_negative_infonce_loss_is_an_impossible_value():
    history = healthy_retrieval_history(5)
    history[2]["train/loss"] = -0.42
    verdict = first_verdict(history)
    assert verdict.guard == "impossible_value"
    assert verdict.epoch == 3
    assert verdict.evidence == {"train/loss": -0.42, "low": 0.0, "high": INF}
    assert "train/loss was -0.42 at epoch 3, below its floor 0" in verdict.reason


def test_recall_above_one_matches_a_wildcard_bound():
    history = healthy_retrieval_history(4)
    history[3]["val/mean_r1"] = 1.3
    verdict = run(history)
    assert verdict.guard == "impossible_value"
    assert verdict.epoch == 4
    assert verdict.evidence["val/mean_r1"] == 1.3
    assert verdict.evidence["high"] == 1.0
    assert "above its ceiling 1" in verdict.reason


def test_round_off_at_a_bound_is_tolerated_and_bounds_from_yaml_lists_work():
    history = healthy_retrieval_history(2)
    history[1]["train/loss"] = -1e-7
    history[1]["val/mean_r1"] = 1.0 + 1e-7
    assert run(history, bounds={"train/loss": [0, None], "val/*_r1": [0, 1]}) is None


def test_coverage_names_bound_patterns_that_match_no_reported_key():
    report = healthy_retrieval_history(1)[0]
    coverage = guard_coverage(report, metric="val/mean_r1", mode="max", config=HealthConfig(),
                              value_bounds={"train/loss": (0, INF), "val/mean_r@1": (0, 1)})
    impossible = next(item for item in coverage if item.guard == "impossible_value")
    assert impossible.active and impossible.watches.startswith("1 of ")
    assert any("val/mean_r@1" in gap and "misspelt" in gap for gap in impossible.gaps)
    nothing = guard_coverage(report, metric="val/mean_r1", mode="max", config=HealthConfig(),
                             value_bounds={})
    assert not next(item for item in nothing if item.guard == "impossible_value").active
