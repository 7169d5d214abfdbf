"""non_finite: NaN or Inf anywhere in a report stops the trial at that report."""

import json
import math

import pytest

from tests.health_histories import INF, first_verdict, healthy_retrieval_history, run


@pytest.mark.parametrize("key", ["train/loss", "val/mean_r1", "probe/text/dim_std"])
@pytest.mark.parametrize("bad", [math.nan, INF, -INF])
def test_non_finite_value_in_any_key_is_a_failure(key, bad):
    history = healthy_retrieval_history(5)
    history[2][key] = bad
    verdict = first_verdict(history)
    assert verdict.guard == "non_finite"
    assert verdict.epoch == 3
    assert verdict.is_failure
    assert list(verdict.evidence) == [key]
    assert verdict.evidence[key] == bad or math.isnan(verdict.evidence[key])
    assert key in verdict.reason


def test_verdict_to_result_is_flat_and_json_safe():
    history = healthy_retrieval_history(2)
    history[1]["train/loss"] = math.nan
    result = run(history).to_result()
    assert result["health/guard"] == "non_finite"
    assert result["health/epoch"] == 2
    assert result["health/failure"] is True
    assert isinstance(result["health/reason"], str)
    assert json.loads(result["health/evidence"]) == {"train/loss": "nan"}


def test_the_guards_own_health_keys_are_not_judged():
    history = healthy_retrieval_history(2)
    history[1]["health/epoch"] = math.nan
    assert run(history) is None
