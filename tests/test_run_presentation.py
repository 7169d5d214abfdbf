"""Trial and sweep runs that say what they are: names, MLflow statuses, descriptions, colours."""

import pytest

from orchestrator.outcomes import TrialOutcome
from orchestrator.run_presentation import (
    MLFLOW_STATUS, SWEEP_RUN_COLOUR, abbreviation, abbreviations, format_value, mlflow_status,
    sweep_description, trial_colour, trial_description, trial_run_name, varying_parameters,
)


def test_guard_stopped_and_failed_trials_are_failed_runs_interrupted_ones_killed():
    assert mlflow_status("stopped") == "FAILED"
    assert mlflow_status("failed") == "FAILED"
    assert mlflow_status("interrupted") == "KILLED"
    for status in ("completed", "converged", "pruned"):
        assert mlflow_status(status) == "FINISHED"
    assert mlflow_status("running") == "RUNNING"
    with pytest.raises(ValueError, match="unknown trial status 'exploded'"):
        mlflow_status("exploded")


def test_every_outcome_status_has_an_mlflow_status():
    from typing import get_args

    from orchestrator.outcomes import Status

    assert set(get_args(Status)) | {"interrupted"} == set(MLFLOW_STATUS)


def test_abbreviations_come_from_the_names_alone_and_never_clash():
    assert abbreviation("learning_rate") == "lr"
    assert abbreviation("hard_negative_ratio") == "hnr"
    assert abbreviation("temperature") == "temp"
    labels = abbreviations(["learning_rate", "hard_negative_ratio", "hidden_node_ratio", "pooling", "pool"])
    assert labels["learning_rate"] == "lr"
    assert len(set(labels.values())) == len(labels), labels
    assert labels["hard_negative_ratio"] != labels["hidden_node_ratio"]


def test_identical_word_initials_fall_back_to_longer_labels_or_full_names():
    labels = abbreviations(["a_b", "a_bb", "ab"])
    assert len(set(labels.values())) == 3, labels


def test_values_are_short_with_two_significant_digits():
    assert format_value(3.1234e-4) == "3.1e-4"
    assert format_value(0.05) == "0.05"
    assert format_value(0.2345) == "0.23"
    assert format_value(12345.0) == "1.2e4"
    assert format_value(64) == "64"
    assert format_value(True) == "True"
    assert format_value("mean_max") == "mean_max"
    assert format_value("0.00031234") == "3.1e-4" and format_value("64") == "64"  # MLflow's text
    assert len(format_value("a_very_long_categorical_choice")) <= 10


def test_trial_name_shows_the_index_and_the_parameters_that_differ_most():
    configs = [
        {"learning_rate": 3.1e-4, "temperature": 0.05, "hard_negative_ratio": 0.2, "pooling": "mean", "batch_size": 64},
        {"learning_rate": 1.2e-3, "temperature": 0.05, "hard_negative_ratio": 0.4, "pooling": "mean", "batch_size": 64},
        {"learning_rate": 2.0e-3, "temperature": 0.07, "hard_negative_ratio": 0.1, "pooling": "max", "batch_size": 64},
    ]
    candidates = ["batch_size", "pooling", "temperature", "learning_rate", "hard_negative_ratio"]
    shown = varying_parameters(configs, candidates)
    # three distinct values each beat two (temperature, pooling) and one (batch_size)
    assert shown == ["learning_rate", "hard_negative_ratio", "pooling"]
    assert trial_run_name(7, configs[0], shown) == "t07 lr=3.1e-4 hnr=0.2 pool=mean"


def test_a_parameter_shown_identically_in_every_trial_is_left_out():
    configs = [{"learning_rate": 1.0001e-3, "seed": 1}, {"learning_rate": 1.0002e-3, "seed": 2}]
    assert varying_parameters(configs, ["learning_rate", "seed"]) == ["seed"]


def test_before_anything_varies_the_search_space_order_decides():
    assert varying_parameters([{"a_b": 1, "c": 2, "d": 3}], ["d", "a_b", "c"], limit=2) == ["d", "a_b"]


def test_a_conditional_parameter_a_trial_lacks_is_skipped_in_its_name():
    name = trial_run_name(1, {"unfreeze_stages": 0}, ["unfreeze_stages", "unfreeze_lr_scale"])
    assert name == "t01 us=0"


def stopped_outcome() -> TrialOutcome:
    return TrialOutcome(
        trial_id="abc", config={}, status="stopped", guard="embedding_collapse",
        reason="image embeddings collapsed: mean off-diagonal cosine 0.999 >= 0.95 on 2 reports " * 3,
        epochs=3, best_metric=0.012, best_epoch=1)


def test_trial_description_keeps_the_whole_reason_and_the_guard_evidence():
    outcome = stopped_outcome()
    text = trial_description(outcome, "val/mean_r1", evidence={"image/offdiag_cosine": 0.99912})
    assert outcome.reason.strip() in text  # not truncated
    assert "**stopped** by guard `embedding_collapse` after 3 epochs" in text
    assert "Best `val/mean_r1`: 0.0120 at epoch 1" in text
    assert "- `image/offdiag_cosine`: 0.9991" in text


def test_sweep_description_counts_statuses_names_the_winner_and_every_verdict():
    winner = TrialOutcome("w", {}, status="completed", reason="ran its budget", epochs=6,
                          best_metric=0.4321, best_epoch=5)
    pruned = TrialOutcome("p", {}, status="pruned", reason="ASHA", epochs=1, best_metric=0.1, best_epoch=1)
    failed = TrialOutcome("f", {}, status="failed", reason="CUDA out of memory")
    outcomes = [winner, pruned, stopped_outcome(), failed]
    names = {"w": "t01 lr=1e-3", "p": "t02 lr=2e-3", "abc": "t03 lr=5e-2", "f": "t04 lr=1e-4"}
    text = sweep_description("sweep-1", "val/mean_r1", "max", outcomes, names, winner)
    assert "4 trials" in text
    for row in ("| completed | 1 |", "| pruned | 1 |", "| stopped | 1 |", "| failed | 1 |"):
        assert row in text
    assert "| running |" not in text  # statuses nobody has are left out
    assert "**Winner**: `t01 lr=1e-3`, val/mean_r1 = 0.4321 at epoch 5" in text
    assert "- `t03 lr=5e-2` stopped by `embedding_collapse`: image embeddings collapsed" in text
    assert "- `t04 lr=1e-4`: CUDA out of memory" in text


def test_a_sweep_without_a_winner_says_so():
    text = sweep_description("s", "val/auroc", "max", [stopped_outcome()], {}, None)
    assert "**No winner**" in text
    assert "`abc` stopped by `embedding_collapse`" in text  # the trial id stands in for a name


def test_trial_colours_never_repeat_within_a_large_sweep_and_differ_from_the_sweep_run():
    colours = [trial_colour(index) for index in range(1, 501)]
    assert len(set(colours)) == 500
    assert SWEEP_RUN_COLOUR not in colours
    assert all(len(colour) == 7 and colour.startswith("#") for colour in colours)
    assert trial_colour(3) == colours[2]  # the same index always gets the same colour
    with pytest.raises(ValueError):
        trial_colour(0)
