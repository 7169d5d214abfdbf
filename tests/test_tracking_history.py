"""What a trial run holds is the history of its trial's surviving checkpoint, whatever happened.

The tracker is driven here as Ray Tune drives it (start, one checkpoint per epoch, retries,
end), with real checkpoints written by the trial loop's own `save_checkpoint` and a real sqlite
MLflow; a "killed driver" is a second tracker of the same sweep, as a resumed sweep makes.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import torch
from mlflow.tracking import MlflowClient
from ray import tune

from orchestrator.outcomes import OutcomeLedger
from orchestrator.tracking import FinalResult, MlflowTracker, open_experiment
from orchestrator.tracking import durations
from orchestrator.training import MixedPrecision, save_checkpoint
from orchestrator.trial_progress import EPOCH_SECONDS, TrialProgress
from tasks.base import TrialSetup
from tests.mlflow_checks import assert_one_value_per_step, runs_of

METRIC, TASK = "val/score", "history"


@dataclass
class FakeTrial:
    """What the tracker reads of a Ray Tune trial."""

    trial_id: str
    config: dict[str, Any] = field(default_factory=lambda: {"learning_rate": 0.01})
    checkpoint: Any = None
    last_result: dict[str, Any] = field(default_factory=dict)
    error_file: str | None = None


def train(trial: FakeTrial, values: list[float], checkpoints: Path,
          progress: TrialProgress | None = None, seconds: float = 1.0) -> TrialProgress:
    """Epochs reaching `values`, `seconds` each, each saved as the trial loop saves it;
    trial.checkpoint is the latest. Continues `progress` (a restored checkpoint's) when given."""
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.AdamW(model.parameters())
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    setup = TrialSetup(model=model, train_batches=[], device=torch.device("cpu"))
    progress = progress or TrialProgress(METRIC, "max")
    for value in values:
        with torch.no_grad():
            model.weight.fill_(value)  # the weights say which epoch they are
        epoch = len(progress.history) + 1
        progress.add_epoch({"epoch": epoch, METRIC: value, "train/loss": 1 - value,
                            EPOCH_SECONDS: seconds}, model)
        directory = checkpoints / f"{trial.trial_id}-{epoch}-{value}"
        directory.mkdir(parents=True)
        save_checkpoint(directory, setup, optimizer, schedule, MixedPrecision(setup.device), progress)
        trial.checkpoint = tune.Checkpoint.from_directory(str(directory))
        trial.last_result = {"epoch": epoch, "training_iteration": epoch, METRIC: value}
    return progress


def restored(trial: FakeTrial, checkpoints: Path, epoch: int) -> TrialProgress:
    """The progress in the trial's checkpoint of `epoch` (as load_checkpoint returns it)."""
    directory = next(checkpoints.glob(f"{trial.trial_id}-{epoch}-*"))
    saved = json.loads((directory / "result.json").read_text())
    return TrialProgress(METRIC, "max", saved["history"], saved["best_epoch"])


def tracker_of(client: MlflowClient, sweep: str = "s") -> MlflowTracker:
    """The tracker a (re)started driver builds for the sweep, its sweep run started."""
    experiment_id = open_experiment(client, TASK)
    ledger = OutcomeLedger(METRIC, "max", max_epochs=3)
    tracker = MlflowTracker(client, experiment_id, sweep, TASK, ledger, sweep_params={},
                            full_config=lambda config: {"config": config})
    tracker.start_sweep()
    return tracker


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """A sqlite store with MLflow's tables (creating them takes seconds), copied per test."""
    path = tmp_path_factory.mktemp("store") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()
    return path


@pytest.fixture
def client(empty_store, tmp_path) -> MlflowClient:
    shutil.copyfile(empty_store, tmp_path / "mlflow.db")
    return MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")


def metric_history(client: MlflowClient, run_id: str, key: str) -> dict[int, float]:
    return {m.step: m.value for m in client.get_metric_history(run_id, key)}


def test_epochs_re_run_after_a_killed_driver_replace_the_values_of_the_lost_attempt(client, tmp_path):
    checkpoints = tmp_path / "checkpoints"
    trial = FakeTrial("t1")
    first = tracker_of(client)
    first.on_trial_start(0, [], trial)
    progress = None
    for value in (0.1, 0.5, 0.3):  # attempt 1: MLflow gets epochs 1-3, best epoch 2
        progress = train(trial, [value], checkpoints, progress)
        first.on_checkpoint(0, [], trial, trial.checkpoint)
    first.flush()  # the hooks' calls run on the tracker's writer thread
    stale_run = first.trials.runs["t1"].run_id
    assert metric_history(client, stale_run, METRIC) == {1: 0.1, 2: 0.5, 3: 0.3}

    # The driver dies; Ray Tune's own state had only epoch 1: the resumed trial re-runs 2 and 3.
    second = tracker_of(client)
    second.on_trial_start(0, [], trial)
    progress = restored(trial, checkpoints, 1)
    for value in (0.2, 0.25):
        progress = train(trial, [value], checkpoints / "resumed", progress)
        second.on_checkpoint(0, [], trial, trial.checkpoint)
    second.ledger.outcome("t1", trial.config).status = "completed"
    second.on_trial_complete(0, [], trial)
    second.end_sweep({})

    (run,) = runs_of(client, TASK, "trial")
    run_id = run.info.run_id
    assert run_id != stale_run and run.data.tags["orchestrate.replaces"] == stale_run
    assert metric_history(client, run_id, METRIC) == {1: 0.1, 2: 0.2, 3: 0.25}
    # each new best of the surviving history, from the restored epoch 1 on
    assert metric_history(client, run_id, "best/epoch") == {2: 2, 3: 3}
    assert metric_history(client, run_id, f"best/{METRIC}") == {2: 0.2, 3: 0.25}
    # seconds trained: the surviving epochs' (1 s each), not the lost attempt's as well
    assert metric_history(client, run_id, "time/train_seconds") == {1: 1.0, 2: 2.0, 3: 3.0}
    exported = json.loads(Path(client.download_artifacts(run_id, "model/result.json")).read_text())
    assert [epoch[METRIC] for epoch in exported["history"]] == [0.1, 0.2, 0.25]
    weights = torch.load(client.download_artifacts(run_id, "model/model.pt"), weights_only=True)
    assert torch.all(weights["weight"] == 0.25)  # epoch 3's weights, not the lost attempt's
    assert run.data.tags["orchestrate.attempts"] == "2"  # started, then resumed
    assert client.list_artifacts(run_id, "")[0].path == "config.yaml"
    assert client.get_run(stale_run).info.lifecycle_stage == "deleted"  # hidden from searches
    assert_one_value_per_step(client, TASK)


@pytest.mark.parametrize("rerun", [False, True], ids=["reported-again", "re-run"])
def test_a_resumed_trials_last_epoch_reported_again_keeps_its_run_and_a_re_run_replaces_it(client, tmp_path, rerun):
    """A resumed trial reports its latest checkpoint's last epoch again (resume_point.py): the
    run holds those very epochs and is kept. Epoch 2 trained again (other wall times) is a
    re-run of what the run holds: it is replaced."""
    trial = FakeTrial("t8")
    first = tracker_of(client)
    first.on_trial_start(0, [], trial)
    progress = train(trial, [0.1, 0.3], tmp_path)
    first.on_checkpoint(0, [], trial, trial.checkpoint)
    first.flush()
    run_id = first.trials.runs["t8"].run_id

    second = tracker_of(client)  # the resumed driver
    second.on_trial_start(0, [], trial)
    if rerun:
        train(trial, [0.3], tmp_path / "rerun", restored(trial, tmp_path, 1), seconds=1.25)
    else:
        again = tmp_path / "reported-again"
        shutil.copytree(trial.checkpoint.path, again)  # Tune stores the report as a new checkpoint
        trial.checkpoint = tune.Checkpoint.from_directory(str(again))
    second.on_checkpoint(0, [], trial, trial.checkpoint)
    train(trial, [0.4], tmp_path / "next", restored(trial, tmp_path, 2))
    second.on_checkpoint(0, [], trial, trial.checkpoint)
    second.flush()

    (run,) = runs_of(client, TASK, "trial")
    assert (run.info.run_id != run_id) == rerun
    assert ("orchestrate.replaces" in run.data.tags) == rerun
    assert metric_history(client, run.info.run_id, METRIC) == {1: 0.1, 2: 0.3, 3: 0.4}
    assert_one_value_per_step(client, TASK)


def test_the_best_weights_are_those_of_the_best_epoch_when_a_later_epoch_is_worse(client, tmp_path):
    tracker = tracker_of(client)
    trial = FakeTrial("t2")
    tracker.on_trial_start(0, [], trial)
    progress = None
    for value in (0.4, 0.6, 0.5):
        progress = train(trial, [value], tmp_path, progress)
        tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    tracker.flush()
    run_id = tracker.trials.runs["t2"].run_id
    weights = torch.load(client.download_artifacts(run_id, "model/model.pt"), weights_only=True)
    assert torch.all(weights["weight"] == 0.6)
    assert metric_history(client, run_id, "best/epoch") == {1: 1, 2: 2}
    assert metric_history(client, run_id, "time/train_seconds") == {1: 1.0, 2: 2.0, 3: 3.0}


def test_a_resumed_driver_fills_epochs_a_failed_tracking_call_left_out(client, tmp_path):
    tracker = tracker_of(client)
    trial = FakeTrial("t3")
    tracker.on_trial_start(0, [], trial)
    progress = train(trial, [0.1], tmp_path)
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    progress = train(trial, [0.2, 0.3], tmp_path, progress)  # epoch 2's call never happened
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    tracker.flush()
    run_id = tracker.trials.runs["t3"].run_id
    assert metric_history(client, run_id, METRIC) == {1: 0.1, 2: 0.2, 3: 0.3}


def test_an_interrupted_then_finished_sweep_run_is_killed_then_finished_without_a_step_twice(client):
    first = tracker_of(client)
    first.end_sweep({}, interrupted=True)
    sweep = client.get_run(first.parent_run_id)
    assert sweep.info.status == "KILLED" and sweep.data.tags["orchestrate.status"] == "interrupted"
    assert "orchestrate sweep --resume --name s" in sweep.data.tags["orchestrate.reason"]
    second = tracker_of(client)
    assert second.parent_run_id == first.parent_run_id
    second.end_sweep({})
    sweep = client.get_run(first.parent_run_id)
    assert sweep.info.status == "FINISHED" and sweep.data.tags["orchestrate.status"] == "finished"
    assert "orchestrate.reason" not in sweep.data.tags
    assert sorted(metric_history(client, sweep.info.run_id, "trials/completed")) == [0, 1]
    assert_one_value_per_step(client, TASK)


def test_a_runs_duration_leaves_out_the_hour_its_driver_was_dead(client, tmp_path, monkeypatch):
    tracker = tracker_of(client)
    trial = FakeTrial("t4")
    tracker.on_trial_start(0, [], trial)
    train(trial, [0.1], tmp_path)
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    tracker.end_sweep({"t4": FinalResult({"done": False}, None)}, interrupted=True)  # Ctrl-C
    hour = 3600 * 1000
    real_now = durations.now_ms
    monkeypatch.setattr(durations, "now_ms", lambda: real_now() + hour)  # resumed an hour later
    resumed = tracker_of(client)
    resumed.on_trial_start(0, [], trial)
    resumed.ledger.outcome("t4", trial.config).status = "completed"
    resumed.on_trial_complete(0, [], trial)
    resumed.end_sweep({})
    for run in runs_of(client, TASK, "trial") + runs_of(client, TASK, "sweep"):
        assert float(run.data.tags["orchestrate.paused_seconds"]) >= 3600
        assert run.info.end_time - run.info.start_time < hour  # the dead hour is not in it


def test_each_failed_attempt_leaves_its_error_line_and_its_error_file(client, tmp_path):
    tracker = tracker_of(client)
    error_file = tmp_path / "error.txt"
    trial = FakeTrial("t5", error_file=str(error_file))
    tracker.on_trial_start(0, [], trial)
    error_file.write_text("Failure # 1 (occurred at 2026-01-01_00-00-00)\nTraceback (most recent "
                          "call last):\n  File x\nRuntimeError: disk full\n")
    tracker.on_trial_recover(0, [], trial)  # Tune retries it
    tracker.on_trial_start(0, [], trial)
    with error_file.open("a") as errors:
        errors.write("Failure # 2 (occurred at 2026-01-01_00-01-00)\nThe actor died unexpectedly "
                     "before finishing this task.\n\tpid: 42\nThe actor is dead because its "
                     "worker process has died.\n")
    tracker.ledger.outcome("t5", trial.config).status = "failed"
    tracker.on_trial_error(0, [], trial)  # out of retries
    tracker.flush()

    run = client.get_run(tracker.trials.runs["t5"].run_id)
    tags = run.data.tags
    assert run.info.status == "FAILED"
    assert tags["orchestrate.attempts"] == "2" and tags["orchestrate.retries"] == "1"
    assert tags["orchestrate.failure.attempt-1"] == "failed: RuntimeError: disk full"
    assert tags["orchestrate.failure.attempt-2"] == "failed: The actor is dead because its worker process has died."
    first = Path(client.download_artifacts(run.info.run_id, "errors/attempt-1.txt")).read_text()
    second = Path(client.download_artifacts(run.info.run_id, "errors/attempt-2.txt")).read_text()
    assert "Traceback" in first and "disk full" in first and "actor" not in first
    assert "pid: 42" in second and "disk full" not in second


def test_a_hook_returns_while_its_mlflow_call_is_still_waiting(client, tmp_path):
    # A trial waits in tune.report for the driver's callbacks; MLflow must not be on that path.
    import threading

    tracker = tracker_of(client)
    trial = FakeTrial("t6")
    store_busy = threading.Event()
    real_of = tracker.trials.of

    def slow_store(of_trial):
        assert store_busy.wait(timeout=60), "the hook never returned"
        return real_of(of_trial)

    tracker.trials.of = slow_store
    tracker.on_trial_start(0, [], trial)  # returns although the store has not answered
    train(trial, [0.4], tmp_path)
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    assert "t6" not in tracker.trials.runs  # nothing written yet: the calls wait their turn
    store_busy.set()
    tracker.flush()
    run_id = tracker.trials.runs["t6"].run_id
    assert metric_history(client, run_id, METRIC) == {1: 0.4}
    assert client.get_run(run_id).data.tags["orchestrate.attempts"] == "1"
    assert tracker.failed_calls == []


def test_a_checkpoint_tune_deleted_before_the_writer_reached_it_is_no_failure(client, tmp_path):
    tracker = tracker_of(client)
    trial = FakeTrial("t7")
    tracker.on_trial_start(0, [], trial)
    progress = train(trial, [0.2], tmp_path)
    first = trial.checkpoint
    progress = train(trial, [0.5], tmp_path, progress)
    shutil.rmtree(first.path)  # Tune kept better checkpoints and deleted this one
    tracker.on_checkpoint(0, [], trial, first)
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    tracker.flush()
    run_id = tracker.trials.runs["t7"].run_id
    assert metric_history(client, run_id, METRIC) == {1: 0.2, 2: 0.5}  # the later one has both
    assert metric_history(client, run_id, "best/epoch") == {2: 2}
    assert tracker.failed_calls == []


def test_a_run_whose_driver_died_between_its_closing_tags_and_its_end_is_ended_on_resume(client, tmp_path):
    from mlflow.entities import RunTag

    tracker = tracker_of(client)
    trial = FakeTrial("t8")
    tracker.on_trial_start(0, [], trial)
    train(trial, [0.3], tmp_path)
    tracker.on_checkpoint(0, [], trial, trial.checkpoint)
    tracker.flush()
    run_id = tracker.trials.runs["t8"].run_id
    # TrialRuns.close's first call (the tags) landed; the driver died before its second (the end)
    client.log_batch(run_id, tags=[RunTag("orchestrate.status", "completed")])
    assert client.get_run(run_id).info.status == "RUNNING"
    resumed = tracker_of(client)
    assert resumed.ledger.trials["t8"].settled_earlier
    run = client.get_run(run_id)
    assert run.info.status == "FINISHED" and run.info.end_time >= run.info.start_time


def test_a_closed_run_of_a_trial_tune_never_recorded_is_deleted_on_resume(client, tmp_path):
    """A trial that started and ended between two of Ray Tune's saves of its state, then the
    driver was killed: the resumed Tune has no record of it and samples another trial in its
    place, so its closed run goes too (the two-task kill soak left it as a 5th run of 4 trials).
    A run closed before the resume that Tune does know is kept."""
    kept, lost = FakeTrial("t1"), FakeTrial("t2")
    first = tracker_of(client)
    for trial in (kept, lost):
        first.on_trial_start(0, [], trial)
        train(trial, [0.3], tmp_path / trial.trial_id)
        first.on_checkpoint(0, [], trial, trial.checkpoint)
        first.ledger.outcome(trial.trial_id, trial.config).status = "pruned"
        first.on_trial_complete(0, [], trial)
    first.flush()
    assert len(runs_of(client, TASK, "trial")) == 2

    resumed = tracker_of(client)  # Tune's saved state had t1 only
    resumed.end_sweep({"t1": FinalResult({"done": True, "epoch": 1}, None, kept.checkpoint)})

    assert [run.data.tags["orchestrate.trial_id"] for run in runs_of(client, TASK, "trial")] == ["t1"]
    assert list(resumed.ledger.trials) == ["t1"]
