"""Run-health guards: each failure is caught with its epoch and evidence; healthy runs are not."""

from __future__ import annotations

import json
import math

import pytest
from pydantic import ValidationError

from orchestrator.health import HealthConfig, Verdict, check_health

INF = math.inf
RETRIEVAL_BOUNDS = {"train/loss": (0.0, INF), "val/*_r1": (0.0, 1.0), "val/*accuracy": (0.0, 1.0)}
LOSSES = [4.2, 3.1, 3.3, 2.4, 2.0, 2.1, 1.6, 1.4, 1.3, 1.1]  # decreasing, with noise
RECALLS = [0.02, 0.06, 0.11, 0.16, 0.22, 0.27, 0.31, 0.35, 0.38, 0.40]


def healthy_retrieval_history(epochs: int = 10) -> list[dict]:
    """A contrastive run that learns: loss 4.2 -> 1.1, R@1 0.02 -> 0.4 at chance 0.01."""
    history = []
    for index in range(epochs):
        recall = RECALLS[index]
        history.append(
            {
                "training_iteration": index + 1,
                "train/loss": LOSSES[index],
                "train/hard_negative_loss": LOSSES[index] / 2,
                "val/mean_r1": recall,
                "val/chance/mean_r1": 0.01,
                "probe/image/offdiag_cosine": 0.35 - 0.02 * index,
                "probe/image/dim_std": 0.8 / math.sqrt(256),
                "probe/image/dim": 256.0,
                "probe/text/offdiag_cosine": 0.30 - 0.02 * index,
                "probe/text/dim_std": 0.7 / math.sqrt(256),
                "probe/text/dim": 256.0,
                "probe/image_shuffled/mean_r1": 0.011,
                "probe/text_shuffled/mean_r1": 0.009,
                "probe/positive_similarity": 0.2 + 0.05 * index,
                "probe/negative_similarity": 0.05,
            }
        )
    return history


def healthy_classification_history(epochs: int = 8) -> list[dict]:
    """A classifier that beats its 80% majority class and an AUROC well above 0.5."""
    accuracies = [0.78, 0.80, 0.84, 0.87, 0.89, 0.91, 0.92, 0.93]
    return [
        {
            "training_iteration": index + 1,
            "train/loss": 0.9 - 0.08 * index,
            "val/accuracy": accuracies[index],
            "val/majority_rate": 0.8,
            "val/auroc": 0.60 + 0.04 * index,
            "probe/image_shuffled/accuracy": 0.80,
        }
        for index in range(epochs)
    ]


def run(history, *, metric="val/mean_r1", mode="max", bounds=None, config=None):
    return check_health(
        history,
        metric=metric,
        mode=mode,
        value_bounds=RETRIEVAL_BOUNDS if bounds is None else bounds,
        config=config or HealthConfig(),
    )


def first_verdict_over_prefixes(history, **kwargs) -> Verdict | None:
    """What the trial loop sees: check_health after each report, the first verdict stops it."""
    for end in range(1, len(history) + 1):
        verdict = run(history[:end], **kwargs)
        if verdict is not None:
            return verdict
    return None


# --- healthy runs -------------------------------------------------------------------------


def test_healthy_retrieval_run_is_never_stopped():
    assert first_verdict_over_prefixes(healthy_retrieval_history()) is None


def test_healthy_classification_run_is_never_stopped():
    history = healthy_classification_history()
    assert first_verdict_over_prefixes(history, metric="val/accuracy") is None


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
    assert first_verdict_over_prefixes(history) is None


# --- non_finite ---------------------------------------------------------------------------


@pytest.mark.parametrize("key", ["train/loss", "val/mean_r1", "probe/text/dim_std"])
@pytest.mark.parametrize("bad", [math.nan, INF, -INF])
def test_non_finite_value_in_any_key_is_a_failure(key, bad):
    history = healthy_retrieval_history(5)
    history[2][key] = bad
    verdict = first_verdict_over_prefixes(history)
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


# --- impossible_value ---------------------------------------------------------------------


def test_negative_infonce_loss_is_an_impossible_value():
    history = healthy_retrieval_history(5)
    history[2]["train/loss"] = -0.42
    verdict = first_verdict_over_prefixes(history)
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


# --- flat_line ----------------------------------------------------------------------------


def test_loss_unchanged_over_the_window_is_a_flat_line():
    history = healthy_retrieval_history(6)
    for report, loss in zip(history, [2.0, 1.7, 1.386294, 1.386294 * (1 + 1e-8), 1.386294]):
        report["train/loss"] = loss
    verdict = first_verdict_over_prefixes(history)
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
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "flat_line"
    assert verdict.epoch == 2
    assert verdict.evidence == {"train/loss": 0.0, "reports": 2.0}
    assert "exactly 0" in verdict.reason


def test_loss_reaching_zero_once_after_training_is_not_a_flat_line():
    history = healthy_retrieval_history(3)
    history[2]["train/loss"] = 0.0
    assert run(history) is None


def test_flat_line_window_is_configurable():
    history = healthy_retrieval_history(5)
    history[3]["train/loss"] = history[4]["train/loss"] = 1.5
    config = HealthConfig(flat_line={"window_reports": 2})
    verdict = run(history, config=config)
    assert (verdict.guard, verdict.epoch) == ("flat_line", 5)
    assert run(history) is None  # two equal reports are under the default window of 3


# --- embedding_collapse -------------------------------------------------------------------


def test_offdiagonal_cosine_near_one_is_a_collapse_naming_the_modality():
    history = healthy_retrieval_history(5)
    for report in history:
        report["probe/text/offdiag_cosine"] = 0.99  # collapsed from init and stays so
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "embedding_collapse"
    assert verdict.epoch == 2
    assert verdict.evidence == {"probe/text/offdiag_cosine": 0.99, "max_offdiag_cosine": 0.95}
    assert "text embeddings collapsed" in verdict.reason


def test_dimension_spread_far_under_one_over_sqrt_d_is_a_collapse():
    history = healthy_retrieval_history(5)
    for report in history[2:]:
        report["probe/image/dim_std"] = 0.001  # healthy is 1/sqrt(256) = 0.0625
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "embedding_collapse"
    assert verdict.epoch == 4
    assert verdict.evidence["probe/image/dim_std"] == 0.001
    assert verdict.evidence["healthy_dim_std"] == pytest.approx(1 / 16)
    assert verdict.evidence["min_dim_std"] == pytest.approx(0.1 / 16)
    assert "image embeddings collapsed" in verdict.reason


def test_a_transient_collapse_at_the_first_epoch_that_recovers_is_fine():
    history = healthy_retrieval_history(5)
    history[0]["probe/image/offdiag_cosine"] = 0.98
    assert first_verdict_over_prefixes(history) is None


def test_a_single_collapsed_report_suffices_with_consecutive_reports_1():
    history = healthy_retrieval_history(3)
    history[0]["probe/image/offdiag_cosine"] = 0.98
    config = HealthConfig(embedding_collapse={"consecutive_reports": 1})
    verdict = first_verdict_over_prefixes(history, config=config)
    assert (verdict.guard, verdict.epoch) == ("embedding_collapse", 1)


# --- chance_level -------------------------------------------------------------------------


def test_recall_at_chance_after_the_warm_up_is_a_failure():
    history = healthy_retrieval_history(5)
    for report in history:
        report["val/mean_r1"] = 0.012
        report["probe/image_shuffled/mean_r1"] = 0.0  # so only the chance guard applies
        report["probe/text_shuffled/mean_r1"] = 0.0
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "chance_level"
    assert verdict.epoch == 3  # reports 1 and 2 are the warm-up
    assert verdict.evidence == {
        "val/mean_r1": 0.012,
        "val/chance/mean_r1": 0.01,
        "threshold": pytest.approx(0.015),
    }
    assert "chance level 0.01" in verdict.reason


def test_auroc_near_half_is_chance_level():
    history = healthy_classification_history(4)
    for report in history:
        report["val/auroc"] = 0.52
    verdict = first_verdict_over_prefixes(history, metric="val/accuracy")
    assert verdict.guard == "chance_level"
    assert verdict.epoch == 3
    assert verdict.evidence == {"val/auroc": 0.52, "threshold": pytest.approx(0.55)}


def test_high_accuracy_that_is_the_majority_rate_is_chance_level():
    history = healthy_classification_history(4)
    for report in history:
        report["val/accuracy"] = 0.90
        report["val/majority_rate"] = 0.90
        report["probe/image_shuffled/accuracy"] = 0.0
    verdict = first_verdict_over_prefixes(history, metric="val/accuracy")
    assert verdict.guard == "chance_level"
    assert verdict.epoch == 3
    assert verdict.evidence == {
        "val/accuracy": 0.90,
        "val/majority_rate": 0.90,
        "threshold": pytest.approx(0.91),
    }
    assert "majority-class rate 0.9" in verdict.reason


def test_binary_accuracy_well_above_chance_half_is_not_chance_level():
    # 1.5 x 0.5 would call 0.7 "chance"; the margin is capped by the declared ceiling 1.
    history = [
        {"val/accuracy": 0.7, "val/chance/accuracy": 0.5, "training_iteration": epoch}
        for epoch in (1, 2, 3)
    ]
    assert run(history, metric="val/accuracy", bounds={"val/accuracy": (0, 1)}) is None
    history[-1]["val/accuracy"] = 0.53
    verdict = run(history, metric="val/accuracy", bounds={"val/accuracy": (0, 1)})
    assert verdict.guard == "chance_level"
    assert verdict.evidence["threshold"] == pytest.approx(0.55)


# --- modality_ignored ---------------------------------------------------------------------


def test_metric_unmoved_by_shuffling_images_is_a_modality_ignored():
    history = healthy_retrieval_history(5)
    for report in history:
        report["probe/image_shuffled/mean_r1"] = report["val/mean_r1"] - 0.005
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "modality_ignored"
    assert verdict.epoch == 3
    assert verdict.evidence["val/mean_r1"] == RECALLS[2]
    assert verdict.evidence["probe/image_shuffled/mean_r1"] == pytest.approx(RECALLS[2] - 0.005)
    assert verdict.evidence["gain"] == pytest.approx(0.005)
    assert verdict.evidence["required_gain"] == pytest.approx(0.1 * RECALLS[2])
    assert "ignores its image input" in verdict.reason


@pytest.mark.parametrize(
    "real, shuffled",
    [(0.015, 0.001), (0.9, 0.85), (0.8, 0.76), (0.3, 0.01)],
    ids=["small-recall", "accuracy-with-strong-other-modality", "auroc", "retrieval"],
)
def test_a_real_gain_over_the_shuffled_metric_is_fine(real, shuffled):
    history = [
        {"val/score": real, "probe/image_shuffled/score": shuffled, "training_iteration": epoch}
        for epoch in (1, 2, 3)
    ]
    assert run(history, metric="val/score", bounds={}) is None


def test_modality_ignored_respects_mode_min_of_the_target():
    history = [
        {"val/mean_rank": 5.0, "probe/text_shuffled/mean_rank": 5.01, "training_iteration": e}
        for e in (1, 2, 3)
    ]
    verdict = run(history, metric="val/mean_rank", mode="min", bounds={})
    assert (verdict.guard, verdict.epoch) == ("modality_ignored", 3)
    assert "text" in verdict.reason
    history[-1]["probe/text_shuffled/mean_rank"] = 40.0
    assert run(history, metric="val/mean_rank", mode="min", bounds={}) is None


# --- plateau ------------------------------------------------------------------------------


def test_metric_stuck_at_a_ceiling_is_a_plateau_not_a_failure():
    history = healthy_retrieval_history(9)
    for report, recall in zip(history, [0.1, 0.2, 0.30, 0.37, 0.371, 0.369, 0.372, 0.37, 0.37]):
        report["val/mean_r1"] = recall
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "plateau"
    assert verdict.is_failure is False
    assert verdict.epoch == 8  # epochs 5-8 gain 0.002 over the best 0.37 of epoch 4
    assert verdict.evidence["best_before"] == 0.37
    assert verdict.evidence["best_recent"] == 0.372
    assert verdict.evidence["gain"] == pytest.approx(0.002)
    assert verdict.to_result()["health/failure"] is False


def test_plateau_respects_mode_min():
    losses = [1.0, 0.8, 0.6, 0.5, 0.45, 0.41]
    history = [{"val/loss": v, "training_iteration": i + 1} for i, v in enumerate(losses)]
    assert run(history, metric="val/loss", mode="min", bounds={}) is None
    rising = [{"val/loss": 0.5 + 0.01 * i, "training_iteration": i + 1} for i in range(5)]
    verdict = run(rising, metric="val/loss", mode="min", bounds={})
    assert (verdict.guard, verdict.epoch, verdict.is_failure) == ("plateau", 5, False)


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


def _collapsed_text_spread(report):
    report["probe/text/dim_std"] = 1e-4


def _chance_recall(report):
    report["val/mean_r1"] = 0.011
    report["probe/image_shuffled/mean_r1"] = report["probe/text_shuffled/mean_r1"] = 0.0


def _ignored_text(report):
    report["probe/text_shuffled/mean_r1"] = report["val/mean_r1"]


# (how a report breaks, expected guard, onset k: the first report that shows the failure).
# A frozen loss first shows at the first report equal to its predecessor, so it breaks from k-1.
ONSETS = [
    (_nan_loss, "non_finite", 4),
    (_negative_loss, "impossible_value", 2),
    (_zero_loss, "flat_line", 1),
    (_frozen_loss, "flat_line", 5),
    (_collapsed_image, "embedding_collapse", 1),
    (_collapsed_image, "embedding_collapse", 4),
    (_collapsed_text_spread, "embedding_collapse", 6),
    (_chance_recall, "chance_level", 3),
    (_chance_recall, "chance_level", 7),
    (_ignored_text, "modality_ignored", 5),
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


# --- configuration and order --------------------------------------------------------------


def test_health_config_rejects_unknown_keys():
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"plateu": {"patience": 3}})
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"plateau": {"patients": 3}})
    with pytest.raises(ValidationError):
        HealthConfig.model_validate({"flat_line": {"window_reports": 1}})


def test_health_config_reads_a_yaml_health_section():
    config = HealthConfig.model_validate(
        {"plateau": {"patience": 6, "min_delta": 0.01}, "chance_level": {"enabled": False}}
    )
    assert config.plateau.patience == 6
    assert config.plateau.min_delta == 0.01
    assert config.chance_level.enabled is False
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
    verdict = run(history)
    assert verdict.guard == "chance_level"  # plateau also holds, but a failure wins
    config = HealthConfig(chance_level={"enabled": False})
    assert run(history, config=config).guard == "plateau"


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


def test_loss_collapsing_to_exactly_zero_mid_training_is_caught_on_its_second_zero():
    history = healthy_retrieval_history(5)
    history[2]["train/loss"] = 0.0
    history[3]["train/loss"] = 0.0
    verdict = first_verdict_over_prefixes(history)
    assert verdict.guard == "flat_line" and verdict.epoch == 4
    assert verdict.evidence == {"train/loss": 0.0, "reports": 2.0}
    assert "on the last 2 reports" in verdict.reason


def test_collapse_that_is_lifting_is_left_alone_and_one_that_stays_is_stopped():
    # a from-scratch model: near-collinear embeddings at first, spreading out (seen in a real
    # demo trial: image cosine 0.996 -> 0.985 -> 0.886 while mean R@1 rose 0.019 -> 0.102)
    lifting = healthy_retrieval_history(3)
    for report, cosine in zip(lifting, (0.996, 0.985, 0.886)):
        report["probe/image/offdiag_cosine"] = cosine
    assert first_verdict_over_prefixes(lifting) is None
    stuck = healthy_retrieval_history(3)
    for report in stuck:
        report["probe/text/offdiag_cosine"] = 1.0
    verdict = first_verdict_over_prefixes(stuck)
    assert verdict.guard == "embedding_collapse" and verdict.epoch == 2 and "text" in verdict.reason


def test_detector_that_ranks_well_but_thresholds_badly_is_not_at_chance():
    history = healthy_retrieval_history(4)
    for report in history:
        report.update({"val/accuracy": 0.90, "val/majority_rate": 0.90, "val/auroc": 0.93})
    assert run(history, metric="val/auroc") is None
    for report in history:
        report["val/auroc"] = 0.51
    assert run(history, metric="val/auroc").guard == "chance_level"
