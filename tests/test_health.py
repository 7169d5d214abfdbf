"""Run-health guards as a whole: healthy runs are never stopped, every failure is caught within
two reports of becoming visible, the health: section configures them, and the preflight's
coverage lists every guard."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from pydantic import ValidationError

from orchestrator.health import HealthConfig, check_health, guard_coverage
from orchestrator.registry import load_task, task_reference
from tests.health_histories import (
    first_verdict, healthy_classification_history, healthy_retrieval_history, run,
)

DEMO_HISTORIES = Path(__file__).parent / "data" / "demo_histories.json"

# --- healthy runs -------------------------------------------------------------------------


def test_healthy_retrieval_run_is_never_stopped():
    assert first_verdict(healthy_retrieval_history()) is None


def test_healthy_classification_run_is_never_stopped():
    assert first_verdict(healthy_classification_history(), metric="val/accuracy") is None


def test_recorded_demo_trials_of_every_built_in_task_meet_no_failure_guard():
    """Real histories: every trial of demo sweeps of the five built-in tasks, as MLflow
    recorded them (tests/data/demo_histories.json, see its "source")."""
    recorded = json.loads(DEMO_HISTORIES.read_text())
    trials = 0
    for task_name, histories in recorded["tasks"].items():
        task = load_task(task_reference(task_name))
        for history in histories:
            verdict = first_verdict(history, metric=task.metric, mode=task.mode,
                                    bounds=task.value_bounds,
                                    plausible_max=getattr(task, "plausible_max", None))
            assert verdict is None or not verdict.is_failure, (task_name, verdict)
            trials += 1
    assert trials >= 40


def test_non_numeric_values_are_ignored():
    history = healthy_retrieval_history(6)
    for report in history:
        report.update(
            {
                "val/comment": "nan",
                "train/loss_text": "-inf",
                "probe/image/offdiag_cosine": None if report["training_iteration"] > 3 else 0.2,
                "done": False,
                "val/flag": True,
                "config": {"learning_rate": math.nan},
                "date": "2024-01-01",
            }
        )
    history[-1]["train/loss"] = "0.0"  # a string is not a loss value, not a flat zero either
    assert first_verdict(history) is None


# --- onset: a failure starting at report k is caught at report k or k + 1 -----------------


def _nan_loss(report):
    report["train/loss"] = math.nan


def _negative_loss(report):
    report["train/loss"] = -0.3


def _zero_loss(report):
    report["train/loss"] = 0.0


def _frozen_loss(report):
    report["train/loss"] = 2.25


def _collapsed_image(report):
    report["probe/image/offdiag_cosine"] = 0.995
    report["probe/image_shuffled/mean_r1"] = report["val/mean_r1"]  # the images tell nothing apart


def _collapsed_text_spread(report):
    report["probe/text/dim_std"] = 1e-4
    report["probe/text_shuffled/mean_r1"] = report["val/mean_r1"]


def _zero_text_vectors(report):
    report.update({"probe/text/offdiag_cosine": 0.0, "probe/text/dim_std": 0.0,
                   "probe/text/zero_fraction": 1.0})


def _chance_recall(report):
    report["val/mean_r1"] = 0.011
    report["probe/image_shuffled/mean_r1"] = report["probe/text_shuffled/mean_r1"] = 0.0


def _ignored_text(report):
    report["probe/text_shuffled/mean_r1"] = report["val/mean_r1"]


def _leaked_labels(report):
    report["val/mean_r1"] = report["probe/image_shuffled/mean_r1"] = 1.0


# (how a report breaks, expected guard, onset k: the first report at which the failure is
# visible to its guard). A frozen loss first shows at the first report equal to its
# predecessor, so it breaks from k - 1; a windowed guard sees a failure once its warm-up is over.
ONSETS = [
    (_nan_loss, "non_finite", 4),
    (_negative_loss, "impossible_value", 2),
    (_zero_loss, "flat_line", 1),
    (_frozen_loss, "flat_line", 5),
    (_collapsed_image, "embedding_collapse", 1),
    (_collapsed_image, "embedding_collapse", 4),
    (_collapsed_text_spread, "embedding_collapse", 6),
    (_zero_text_vectors, "embedding_collapse", 3),
    (_chance_recall, "chance_level", 2),
    (_chance_recall, "chance_level", 7),
    (_ignored_text, "modality_ignored", 4),
    (_ignored_text, "modality_ignored", 6),
    (_leaked_labels, "leakage", 3),
]


@pytest.mark.parametrize("break_report, guard, onset", ONSETS)
def test_failure_is_caught_within_two_reports_of_its_onset(break_report, guard, onset):
    history = healthy_retrieval_history(10)
    first_broken = onset - 2 if break_report is _frozen_loss else onset - 1
    for report in history[first_broken:]:
        break_report(report)
    caught_at = None
    for end in range(1, len(history) + 1):
        verdict = run(history[:end])
        if verdict is not None:
            caught_at = end
            break
    assert caught_at in (onset, onset + 1), f"{guard} from report {onset} caught at {caught_at}"
    assert verdict.guard == guard
    assert verdict.epoch == caught_at
    assert verdict.is_failure


# --- configuration, order and coverage ----------------------------------------------------


def test_health_config_rejects_unknown_keys():
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"plateu": {"patience": 3}})
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"plateau": {"patients": 3}})
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"flat_line": {"window_reports": 1}})


def test_health_config_reads_a_yaml_health_section():
    config = HealthConfig.model_validate(
        {"plateau": {"patience": 6, "min_delta": 0.01}, "chance_level": {"enabled": False},
         "leakage": {"plausible_max": {"val/accuracy": 0.95}}}
    )
    assert config.plateau.patience == 6
    assert config.plateau.min_delta == 0.01
    assert config.chance_level.enabled is False
    assert config.leakage.plausible_max == {"val/accuracy": 0.95}
    assert config.flat_line.window_reports == 3  # untouched guards keep their defaults


def test_a_disabled_guard_does_not_fire():
    history = healthy_retrieval_history(3)
    history[-1]["val/mean_r1"] = math.nan
    assert run(history).guard == "non_finite"
    assert run(history, config=HealthConfig(non_finite={"enabled": False})) is None


def test_failures_are_checked_before_plateau_and_first_verdict_wins():
    history = [
        {"training_iteration": e, "train/loss": 1.0 + e, "val/mean_r1": 0.2, "val/auroc": 0.5}
        for e in range(1, 7)
    ]
    assert run(history).guard == "chance_level"  # plateau also holds, but a failure wins
    assert run(history, config=HealthConfig(chance_level={"enabled": False})).guard == "plateau"


def test_learning_is_judged_within_the_latest_training_regime_failures_always():
    # A head on frozen features sits at chance for 3 epochs; its encoder is freed at report 4
    # and it learns. The trial loop passes where that regime began and whether it is the last.
    recalls = [0.011, 0.009, 0.010, 0.020, 0.060, 0.110]
    history = [{"training_iteration": e + 1, "train/loss": 4.0 - 0.1 * e, "val/mean_r1": r,
                "val/chance/mean_r1": 0.01} for e, r in enumerate(recalls)]

    def judge(end, regime_start=0, regime_settled=True, reports=history):
        return check_health(reports[:end], metric="val/mean_r1", mode="max", value_bounds={},
                            config=HealthConfig(), regime_start=regime_start,
                            regime_settled=regime_settled)

    assert judge(3).guard == "chance_level"  # judged as one regime, the frozen head is stopped
    assert all(judge(end, regime_settled=False) is None for end in (1, 2, 3))
    assert all(judge(end, regime_start=3) is None for end in (4, 5, 6))
    # at chance after the encoder was freed too: stopped once the new regime's warm-up is past
    flat = [{**report, "val/mean_r1": 0.01} for report in history]
    assert judge(5, regime_start=3, reports=flat) is None
    assert judge(6, regime_start=3, reports=flat).guard == "chance_level"
    assert judge(6, regime_start=3, reports=flat).epoch == 6
    broken = [*history[:2], {**history[2], "train/loss": math.nan}]
    assert judge(3, regime_settled=False, reports=broken).guard == "non_finite"


def test_guards_run_most_specific_diagnosis_first():
    assert [guard.name for guard in HealthConfig().guards()] == [
        "non_finite", "impossible_value", "leakage", "embedding_collapse", "flat_line",
        "chance_level", "modality_ignored", "plateau"]


def test_epoch_comes_from_training_iteration_then_epoch_then_position():
    reports = [{"train/loss": -1.0}, {"train/loss": -1.0, "epoch": 7}]
    assert run(reports[:1]).epoch == 1
    assert run(reports).epoch == 7
    reports[1]["training_iteration"] = 9
    assert run(reports).epoch == 9


def test_empty_history_and_bad_mode():
    assert run([]) is None
    with pytest.raises(ValueError, match="mode"):
        run(healthy_retrieval_history(1), mode="maximise")


def test_coverage_lists_every_guard_in_order_with_disabled_ones_off():
    report = healthy_retrieval_history(1)[0]
    config = HealthConfig(plateau={"enabled": False})
    coverage = guard_coverage(report, metric="val/mean_r1", mode="max",
                              value_bounds={"train/loss": (0, None)}, config=config)
    assert [item.guard for item in coverage] == [guard.name for guard in config.all_guards()]
    plateau = coverage[-1]
    assert not plateau.active and plateau.gaps == ("disabled by health.plateau.enabled: false",)
    assert all(item.active for item in coverage[:-1])
