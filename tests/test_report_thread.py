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
import os
import threading
import time
from pathlib import Path

import pytest
import torch

from orchestrator.health import HealthConfig
from orchestrator.report_thread import ReportThread
from orchestrator.trainable import TrialPlan, run_trial, train_trial
from orchestrator.trial_progress import TrialProgress
from orchestrator.training import (
    MODEL_FILE, RESULT_FILE, TRAINER_STATE_FILE, MixedPrecision, build_optimizer, checkpoint_state,
    seed_everything, train_one_epoch, write_checkpoint)
from tests.zoo.plateau import PlateauMatcherTask

EPOCHS = 3
BATCHES_PER_EPOCH = 8  # the zoo matcher's demo data
FAILSAFE_SECONDS = 60
EVALUATION_SECONDS = 3  # more than the 2 s Tune waits for an ended trial's thread by default


class CountedMatcher(PlateauMatcherTask):
    """The zoo's healthy matcher, counting its training batches (8 per epoch) and evaluations."""

    name = "counted_matcher"
    batches = 0
    evaluations = 0
    batch_ran = threading.Condition()

    def training_step(self, setup, batch):
        with self.batch_ran:
            type(self).batches += 1
            self.batch_ran.notify_all()
        return super().training_step(setup, batch)

    def evaluate(self, setup, split):
        with self.batch_ran:
            type(self).evaluations += 1
            self.batch_ran.notify_all()
        return super().evaluate(setup, split)


class SlowlyEvaluatedMatcher(PlateauMatcherTask):
    """The zoo's healthy matcher with an evaluation that takes seconds, as on a large val set."""

    name = "slowly_evaluated_matcher"

    def evaluate(self, setup, split):
        time.sleep(EVALUATION_SECONDS)
        return super().evaluate(setup, split)


task = CountedMatcher()
slowly_evaluated = SlowlyEvaluatedMatcher()


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


def evaluated_after(count: int, seconds: float) -> bool:
    """Wait up to `seconds` for an evaluation beyond `count`; whether one came."""
    with CountedMatcher.batch_ran:
        return CountedMatcher.batch_ran.wait_for(lambda: CountedMatcher.evaluations > count,
                                                 timeout=seconds)


@pytest.fixture()
def plan(data_dir) -> TrialPlan:
    CountedMatcher.batches = CountedMatcher.evaluations = 0
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


def test_the_next_epoch_is_evaluated_only_once_the_report_before_it_returned(plan):
    """Evaluation cannot stop midway: while a report whose answer may end the trial is out,
    the loop trains but does not evaluate (Tune then finds it where it stops at once)."""
    epoch_2_trained, evaluated_while_out = [], []

    def report(result, directory):
        if result["epoch"] == 1:
            # Counted from the start, not from now: the loop may already be inside epoch 2.
            epoch_2_trained.append(batches_after(2 * BATCHES_PER_EPOCH - 1))
            evaluated_while_out.append(evaluated_after(CountedMatcher.evaluations, seconds=3))

    train_trial({}, plan, None, report)
    assert epoch_2_trained == [True]
    assert evaluated_while_out == [False]
    assert CountedMatcher.evaluations == EPOCHS


def test_a_report_that_ends_the_trial_stops_the_loop_within_a_batch(plan):
    reported, at_stop, kept = [], [], []

    def report(result, directory):
        reported.append(result["epoch"])
        kept.append(directory)
        if result["epoch"] == 1:
            batches_after(CountedMatcher.batches)  # the loop is in epoch 2 now
            at_stop.append(CountedMatcher.batches)
            raise SystemExit(0)  # what tune.report does when Tune stops the trial

    with pytest.raises(SystemExit) as stop:  # how the trial's thread ends, as tune.report's
        train_trial({}, plan, None, report)
    assert stop.value.code == 0
    assert reported == [1]
    assert CountedMatcher.batches - at_stop[0] <= 1  # the batch under way, then no more
    assert not kept[0].exists()


def test_a_checkpoint_written_while_the_next_epoch_trains_holds_the_epoch_it_was_taken_at(
        data_dir, tmp_path):
    seed_everything(0)
    config = task.config_model()
    setup = task.build(config, data_dir, torch.device("cpu"))
    optimizer, schedule = build_optimizer(setup, config, EPOCHS, len(setup.train_batches))
    precision = MixedPrecision(setup.device)
    train_one_epoch(task, setup, optimizer, schedule, precision, config.grad_clip_norm)
    taken = {key: tensor.clone() for key, tensor in setup.model.state_dict().items()}
    taken_moments = [state["exp_avg"].clone() for state in optimizer.state.values()]
    state = checkpoint_state(setup, optimizer, schedule, precision,
                             TrialProgress(task.metric, task.mode))
    train_one_epoch(task, setup, optimizer, schedule, precision, config.grad_clip_norm)  # on
    write_checkpoint(tmp_path, state)
    written = torch.load(tmp_path / MODEL_FILE, weights_only=True)
    assert all(torch.equal(written[key], taken[key]) for key in taken)
    now = setup.model.state_dict()
    assert not all(torch.equal(written[key], now[key]) for key in taken)
    trainer = torch.load(tmp_path / TRAINER_STATE_FILE, weights_only=True)
    moments = [state["exp_avg"] for state in trainer["optimizer"]["state"].values()]
    assert all(torch.equal(saved, before) for saved, before in zip(moments, taken_moments))
    assert trainer["lr_schedule"]["last_epoch"] == len(setup.train_batches)  # one epoch's steps


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


def no_checkpoint(directory):
    """A checkpoint writer that writes nothing (the unit tests of ReportThread need none)."""


def test_an_error_of_the_loop_waits_for_the_report_in_flight():
    """So the epoch reported before the error reaches Tune, and a retry resumes after it."""
    released, returned = threading.Event(), []

    def report(result, directory):
        released.wait(timeout=FAILSAFE_SECONDS)
        returned.append(result["epoch"])

    with pytest.raises(ZeroDivisionError):
        with ReportThread(report) as reports:
            reports.send({"epoch": 1}, no_checkpoint)
            released.set()
            raise ZeroDivisionError
    assert returned == [1]


def test_an_error_after_a_report_ended_the_trial_is_not_the_trials():
    def report(result, directory):
        raise SystemExit(0)

    with pytest.raises(SystemExit) as stop:
        with ReportThread(report) as reports:
            reports.send({"epoch": 1}, no_checkpoint)
            raise RuntimeError("in an epoch begun before Tune's stop reached the loop")
    assert stop.value.code == 0


def test_the_last_report_ending_the_trial_ends_the_loops_thread_as_tune_report_would():
    """A trial function that returns after Tune ended it is taken to have ended by itself:
    Tune's wrapper then reports once more and waits for ever (the worker is never reused)."""
    def report(result, directory):
        raise SystemExit(0)

    with pytest.raises(SystemExit) as stop:
        with ReportThread(report) as reports:
            reports.send({"epoch": 1}, no_checkpoint)
    assert stop.value.code == 0


def test_a_checkpoint_that_cannot_be_written_is_the_trials_error_and_is_not_reported():
    written, reported = [], []

    def disk_full(directory):
        written.append(directory)
        (directory / "model.pt").write_bytes(b"")
        raise OSError(28, "No space left on device")

    with pytest.raises(OSError, match="No space left"):
        with ReportThread(lambda result, directory: reported.append(result)) as reports:
            reports.send({"epoch": 1}, disk_full)
    assert reported == []
    assert not written[0].exists()


def test_nothing_is_sent_after_a_report_ended_the_trial():
    sent = []

    def report(result, directory):
        sent.append(result["epoch"])
        raise SystemExit(0)

    with pytest.raises(SystemExit):
        with ReportThread(report) as reports:
            reports.send({"epoch": 1}, no_checkpoint)
            reports.send({"epoch": 2}, no_checkpoint)
    assert sent == [1]


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


@pytest.mark.slow
def test_trials_stopped_at_a_report_hand_their_worker_to_the_next_trial(data_dir, tmp_path,
                                                                          monkeypatch):
    """Real Ray Tune, one slot, workers reused, Tune's own 2 s wait for an ended trial's thread:
    each trial is stopped at its first report (as ASHA prunes at a rung) while its loop trains
    on, and its evaluation takes longer than that wait. Each trial ends without an error with
    that one epoch and its checkpoint, and the next trial runs in the same worker."""
    import ray
    from ray import tune

    from orchestrator.trainable import TRIAL_THREAD_TIMEOUT_ENV

    repo = str(Path(__file__).resolve().parent.parent)
    monkeypatch.setenv("PYTHONPATH",
                       os.pathsep.join(filter(None, [repo, os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv(TRIAL_THREAD_TIMEOUT_ENV, "2")  # Tune's default, kept by run_trial
    plan = TrialPlan("tests.test_report_thread:slowly_evaluated", str(data_dir), EPOCHS,
                     slowly_evaluated.metric, slowly_evaluated.mode, HealthConfig())
    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        grid = tune.Tuner(
            tune.with_resources(tune.with_parameters(run_trial, plan=plan), {"cpu": 1}),
            param_space={"seed": tune.grid_search([0, 1, 2])},
            tune_config=tune.TuneConfig(reuse_actors=True),
            run_config=tune.RunConfig(storage_path=str(tmp_path / "ray"), name="stops",
                                      stop={"training_iteration": 1}, verbose=0),
        ).fit()
    finally:
        ray.shutdown()
    results = list(grid)
    assert [result.error for result in results] == [None, None, None]
    assert [result.metrics["epoch"] for result in results] == [1, 1, 1]
    for result in results:
        with result.checkpoint.as_directory() as directory:
            assert len(json.loads((Path(directory) / RESULT_FILE).read_text())["history"]) == 1
    assert len({result.metrics["pid"] for result in results}) == 1  # one worker, reused
