"""bench/compare.py's figures, from trials whose epochs are known (no training)."""

import math

from bench.compare import ArmRun, TrialRecord, add_relative, broken_predicate, figures, table

METRIC = "val/mean_r1"
VERDICT = {"health/guard": "non_finite", "health/failure": True}


def trial(config, values, failure_at=None):
    results = [{"epoch": i + 1, METRIC: v} for i, v in enumerate(values)]
    if failure_at is not None:
        results[failure_at].update(VERDICT)
    return TrialRecord(config, results)


HEALTHY = {"learning_rate": 1e-3, "temperature": 0.1}
BROKEN = {"learning_rate": 0.05, "temperature": 0.1}  # over broken_space's learning-rate edge


def test_figures_count_epochs_best_broken_trials_and_the_reports_after_a_failure_was_visible():
    broken = broken_predicate("bench.tasks.broken_space:task")
    run = ArmRun("asha", [
        trial(BROKEN, [0.1, math.nan, math.nan, math.nan], failure_at=1),  # 2 reports too late
        trial(HEALTHY, [0.5, 0.7, 0.6]),
        trial(BROKEN, [math.nan], failure_at=0),  # stopped at once
        trial(HEALTHY, [0.4]),
    ], wall_s=10.0)
    f = figures(run, METRIC, "max", broken)
    assert f["trial_epochs"] == 9
    assert f["best"] == 0.7
    assert f["broken_epochs"] == 5
    assert f["reports_to_stop"] == 1.0  # mean of 2 and 0
    assert (f["broken_first"], f["broken_second"]) == (0.5, 0.5)


def test_a_task_without_a_broken_region_counts_trials_with_a_failure_verdict():
    broken = broken_predicate("tasks.retrieval:task")
    assert broken(trial({}, [math.nan], failure_at=0))
    assert not broken(trial({}, [0.3, 0.4]))


def test_gap_and_ratios_are_relative_to_the_best_arm_and_the_full_budget_arm():
    per_arm = {"random": {"best": 0.8, "wall_s": 100.0, "trial_epochs": 100},
               "orchestrate": {"best": 0.76, "wall_s": 50.0, "trial_epochs": 25}}
    add_relative(per_arm, "max")
    assert per_arm["random"]["gap_pct"] == 0.0
    assert math.isclose(per_arm["orchestrate"]["gap_pct"], 5.0)
    assert per_arm["orchestrate"]["wall_ratio"] == 0.5
    assert per_arm["orchestrate"]["epoch_ratio"] == 0.25
    per_arm["random"].update(reports_to_stop=math.nan, broken_epochs=0, broken_first=0,
                             broken_second=0)
    per_arm["orchestrate"].update(reports_to_stop=0.0, broken_epochs=1, broken_first=0.5,
                                  broken_second=0.0)
    text = table([per_arm, per_arm], ["random", "orchestrate"])
    assert "| 25 (25-25) | 0.25 (0.25-0.25) | 0.760 (0.760-0.760) | 5.0 (5.0-5.0) |" in text
    assert "| 25 | 0.25 | 0.760 | 5.0 |" in table([per_arm], ["random", "orchestrate"])


def test_learning_curve_ranks_say_when_an_early_epoch_would_have_dropped_the_winner():
    from bench.compare import learning_curve_ranks
    run = ArmRun("random", [
        trial(HEALTHY, [0.2, 0.5, 0.9]),   # the winner: last at epoch 1
        trial(HEALTHY, [0.6, 0.6, 0.6]),
        trial(HEALTHY, [0.5, 0.55, 0.58]),
        trial(BROKEN, [math.nan, math.nan, math.nan]),
    ], wall_s=1.0)
    rows = learning_curve_ranks(run, METRIC, "max")
    assert [k for k, _, _ in rows] == [1, 2, 3]
    assert rows[0][2] == 2 / 3 and rows[2][2] == 0.0  # two of three ahead of it at epoch 1
    assert rows[2][1] == 1.0 and rows[0][1] < rows[2][1]


def test_successive_halving_cost_follows_ashas_rungs_and_the_floor_trains_one_trial_to_the_end():
    from bench.compare import rungs, successive_halving_cost
    assert rungs(12, 1, 2) == [1, 2, 4, 8]
    assert rungs(12, 1, 4) == [1, 4]
    assert rungs(6, 2, 2) == [2, 4]
    # 20 trials: 20 x 1 + 10 x 1 + 5 x 2 + 2 x 4 + 1 x 4 epochs
    assert successive_halving_cost(20, 12, 1, 2) == (52, 31)
    # 8 trials of 6 epochs: every trial's first epoch and one trial's other 5 are 13 > 48 / 4
    assert successive_halving_cost(8, 6, 1, 2) == (18, 13)


def test_a_budget_override_writes_a_checked_copy_of_the_space_and_leaves_the_original(tmp_path):
    import pytest

    from bench.compare import REPO, with_budget
    from orchestrator.spaces import SpecError, load_spec
    original = REPO / "bench" / "tasks" / "broken_space.yaml"
    before = original.read_text()
    assert with_budget(original, None, None, tmp_path) == original
    copy = with_budget(original, 2, 4, tmp_path)
    assert copy.parent == tmp_path
    budget = load_spec(copy).budget
    assert (budget.max_epochs, budget.grace_period, budget.reduction_factor) == (12, 2, 4.0)
    assert load_spec(copy).parameters == load_spec(original).parameters
    assert original.read_text() == before
    with pytest.raises(SpecError, match="grace_period"):
        with_budget(original, 13, None, tmp_path)
