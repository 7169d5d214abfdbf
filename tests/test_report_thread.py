"""The trial loop sends each report from a thread of its own and trains on meanwhile
(orchestrator/report_thread.py): reports arrive in order with their checkpoints, the next
epoch's batches run while a report is in flight, a report that ends the trial stops the loop
within a batch, and a report's error is the trial's error.

In this process, no Ray: a reporter stands in for `tune.report`, ending the trial the way Tune
does (SystemExit(0) out of the reporting call). Each reporter that waits for the loop to train
on waits with a failsafe timeout; a loop that waited for its reports never trains on, and the
test then fails on what the reporter saw, not on a time.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest
import torch

from orchestrator.health import HealthConfig
from orchestrator.report_thread import EndedByTune, ReportThread
from orchestrator.trainable import TrialPlan, train_trial
from orchestrator.training import RESULT_FILE
from tests.zoo.plateau import PlateauMatcherTask

EPOCHS = 3
FAILSAFE_SECONDS = 60


class CountedMatcher(PlateauMatcherTask):
    """The zoo's healthy matcher, counting its training batches (8 per epoch)."""

    name = "counted_matcher"
    batches = 0
    batch_ran = threading.Condition()

    def training_step(self, setup, batch):
        with self.batch_ran:
            type(self).batches += 1
            self.batch_ran.notify_all()
        return super().training_step(setup, batch)


task = CountedMatcher()


def batches_after(count: int) -> bool:
    """Wait until the loop has trained a batch beyond `count`; whether it did (failsafe)."""
    with CountedMatcher.batch_ran:
        return CountedMatcher.batch_ran.wait_for(lambda: CountedMatcher.batches > count,
                                                 timeout=FAILSAFE_SECONDS)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("zoo")
    task.make_demo_data(root, seed=0)
    return root


@pytest.fixture()
def plan(data_dir) -> TrialPlan:
    CountedMatcher.batches = 0
    return TrialPlan(f"{__name__}:task", str(data_dir), EPOCHS, task.metric, task.mode,
                     HealthConfig())


def test_reports_arrive_in_order_with_their_checkpoints_which_are_removed_after(plan):
    seen = []

    def report(result, directory):
        history = json.loads((directory / RESULT_FILE).read_text())["history"]
        seen.append((result["epoch"], len(history), directory))

    train_trial({}, plan, None, report)
    assert [(epoch, saved) for epoch, saved, _ in seen] == [(1, 1), (2, 2), (3, 3)]
    assert not any(directory.exists() for _, _, directory in seen)


def test_the_next_epoch_trains_while_a_report_is_in_flight(plan):
    trained_on = []

    def report(result, directory):
        if result["epoch"] == 1:
            trained_on.append(batches_after(CountedMatcher.batches))

    train_trial({}, plan, None, report)
    assert trained_on == [True]


def test_a_report_that_ends_the_trial_stops_the_loop_within_a_batch(plan):
    reported, at_stop, kept = [], [], []

    def report(result, directory):
        reported.append(result["epoch"])
        kept.append(directory)
        if result["epoch"] == 1:
            batches_after(CountedMatcher.batches)  # the loop is in epoch 2 now
            at_stop.append(CountedMatcher.batches)
            raise SystemExit(0)  # what tune.report does when Tune stops the trial

    train_trial({}, plan, None, report)  # returns: Tune ended the trial, no error
    assert reported == [1]
    assert CountedMatcher.batches - at_stop[0] <= 1  # the batch under way, then no more
    assert not kept[0].exists()


def test_an_error_in_a_report_is_the_trials_error(plan):
    reported = []

    class StorageDown(OSError):
        pass

    def report(result, directory):
        reported.append(result["epoch"])
        if result["epoch"] == 1:
            raise StorageDown("the trial's storage is unreachable")

    with pytest.raises(StorageDown):
        train_trial({}, plan, None, report)
    assert reported == [1]


def test_an_error_of_the_loop_waits_for_the_report_in_flight():
    """So the epoch reported before the error reaches Tune, and a retry resumes after it."""
    released, returned = threading.Event(), []

    def report(result, directory):
        released.wait(timeout=FAILSAFE_SECONDS)
        returned.append(result["epoch"])

    with pytest.raises(ZeroDivisionError):
        with ReportThread(report) as reports:
            reports.send({"epoch": 1}, reports.checkpoint_directory())
            released.set()
            raise ZeroDivisionError
    assert returned == [1]


def test_an_error_after_a_report_ended_the_trial_is_not_the_trials():
    def report(result, directory):
        raise SystemExit(0)

    with ReportThread(report) as reports:
        reports.send({"epoch": 1}, reports.checkpoint_directory())
        raise RuntimeError("in an epoch Tune had already ended the trial before")


def test_a_checkpoint_directory_never_sent_is_removed():
    with pytest.raises(ValueError):
        with ReportThread(lambda result, directory: None) as reports:
            directory = reports.checkpoint_directory()
            (directory / "model.pt").write_bytes(b"")
            raise ValueError("saving the checkpoint failed")
    assert not directory.exists()


def test_sending_after_the_trial_ended_raises_ended_by_tune():
    def report(result, directory):
        raise SystemExit(0)

    with ReportThread(report) as reports:
        reports.send({"epoch": 1}, reports.checkpoint_directory())
        directory = reports.checkpoint_directory()
        with pytest.raises(EndedByTune):
            reports.send({"epoch": 2}, directory)
    assert not directory.exists()


def test_the_training_generators_are_the_same_whether_or_not_reports_are_slow(plan):
    """The report thread draws nothing from the global generators the loop trains with."""
    def losses(slow: bool):
        seen = []

        def report(result, directory):
            if slow and result["epoch"] < EPOCHS:
                batches_after(CountedMatcher.batches)
            seen.append(result["train/loss"])

        torch.manual_seed(0)
        train_trial({}, plan, None, report)
        return seen

    assert losses(slow=False) == losses(slow=True)
