"""Ray Tune's false alarms stay off the terminal, its real failures do not (orchestrator/tune_noise.py).

Each message is made by Ray's own code: its experiment-state logger with the error pyarrow
raises for a file gone before it was opened, and OptunaSearch's timing of a slow space.
"""

from __future__ import annotations

import logging
import time
import warnings

import optuna
import pyarrow.fs
import pytest
from ray.tune.execution import experiment_state
from ray.tune.search.optuna import OptunaSearch

from orchestrator.tune_noise import quiet_tune_noise


class Collected(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture()
def state_log():
    logger = logging.getLogger(experiment_state.__name__)
    collected = Collected()
    logger.addHandler(collected)
    filters = list(logger.filters)
    yield logger, collected.records
    logger.removeHandler(collected)
    logger.filters[:] = filters


def log_state_copy_failure(logger: logging.Logger, missing) -> None:
    """What Tune logs when copying its staging directory fails (experiment_state.py)."""
    try:
        pyarrow.fs.LocalFileSystem().open_input_stream(str(missing))
    except Exception:
        logger.error("Saving experiment state to storage at '/somewhere' failed with exception: ",
                     exc_info=True)


def test_a_state_file_renamed_while_tune_copied_it_is_not_shown_other_copy_failures_are(state_log, tmp_path):
    logger, records = state_log
    renamed = tmp_path / "driver_artifacts" / ".0a1b-tmp-searcher-state-2026-11-24_22-06-05.pkl"
    log_state_copy_failure(logger, renamed)
    assert len(records) == 1  # Ray alone shows it (the test can fail)

    quiet_tune_noise()
    quiet_tune_noise()
    log_state_copy_failure(logger, renamed)
    assert len(records) == 1
    # a state file that is not one of Tune's temporaries, gone: still shown
    log_state_copy_failure(logger, tmp_path / "driver_artifacts" / "experiment_state-2026.json")
    assert len(records) == 2
    logger.error("Saving experiment state to storage at '/somewhere' failed with exception: ",
                 exc_info=(PermissionError, PermissionError(13, "denied", "/x-tmp-y"), None))
    assert len(records) == 3


def optuna_search_of(space) -> OptunaSearch:
    return OptunaSearch(space=space, metric="m", mode="max", sampler=optuna.samplers.RandomSampler(seed=0))


def slow_space(trial):
    time.sleep(1.1)  # over the 1 s Ray warns at
    trial.suggest_float("x", 0.0, 1.0)


def test_a_space_that_took_over_a_second_to_sample_is_not_warned_about(state_log):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        optuna_search_of(slow_space).suggest("t1")
        assert any("Define-by-run" in str(w.message) for w in seen)  # Ray alone warns

        seen.clear()
        quiet_tune_noise()
        config = optuna_search_of(slow_space).suggest("t2")
        assert not any("Define-by-run" in str(w.message) for w in seen)
        assert 0.0 <= config["x"] <= 1.0
