"""Where a trial's attempt starts when Tune's saved record names a checkpoint that is gone or
half deleted (orchestrator/resume_point.py), on checkpoint directories laid out as the trial
loop writes them. The sweep-level case (a killed driver, Tune's own deletion) is in test_resume."""

import json
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
from pyarrow.fs import LocalFileSystem
from ray import tune

from orchestrator.resume_point import newest_complete_checkpoint, remove_unrecorded_trials, resume_point
from orchestrator.training import (
    BEST_MODEL_FILE, ENDED_MARKER, MODEL_FILE, RESULT_FILE, TRAINER_STATE_FILE, checkpoint_is_complete)


@dataclass
class Storage:  # the two attributes of Tune's StorageContext that resume_point reads
    trial_fs_path: str
    storage_filesystem: LocalFileSystem


def write_checkpoint(directory: Path, epochs: int, best_epoch: int | None = None, guard: str | None = None) -> Path:
    directory.mkdir(parents=True)
    history = [{"epoch": epoch, "val/acc": 0.1 * epoch, "time/train_seconds": 1.5 * epoch}
               for epoch in range(1, epochs + 1)]
    if guard:
        history[-1]["health/guard"] = guard
    best_epoch = best_epoch or epochs
    torch.save({"weight": torch.full((4,), float(epochs))}, directory / MODEL_FILE)
    if best_epoch != epochs:
        torch.save({"weight": torch.full((4,), float(best_epoch))}, directory / BEST_MODEL_FILE)
    torch.save({"optimizer": {}, "generators": {}}, directory / TRAINER_STATE_FILE)
    (directory / RESULT_FILE).write_text(json.dumps({"history": history, "best_epoch": best_epoch}))
    return directory


def checkpoint(path: Path) -> tune.Checkpoint:
    return tune.Checkpoint(str(path), filesystem=LocalFileSystem())


@pytest.fixture
def trial_dir(tmp_path):
    return tmp_path / "trial_abc"


def attempt(trial_dir: Path, restored: Path | None):
    reports = []
    start = resume_point(None if restored is None else checkpoint(restored),
                         Storage(str(trial_dir), LocalFileSystem()),
                         lambda result, directory: reports.append((result, json.loads((directory / RESULT_FILE).read_text()))))
    return start, reports


def test_a_checkpoint_missing_a_file_or_truncated_is_incomplete(trial_dir):
    whole = write_checkpoint(trial_dir / "checkpoint_000000", 2)
    assert checkpoint_is_complete(whole)
    no_result = write_checkpoint(trial_dir / "checkpoint_000001", 2)
    (no_result / RESULT_FILE).unlink()
    no_best = write_checkpoint(trial_dir / "checkpoint_000002", 3, best_epoch=2)
    assert checkpoint_is_complete(no_best)
    (no_best / BEST_MODEL_FILE).unlink()
    truncated = write_checkpoint(trial_dir / "checkpoint_000003", 4)
    data = (truncated / MODEL_FILE).read_bytes()
    (truncated / MODEL_FILE).write_bytes(data[: len(data) // 2])
    empty = trial_dir / "checkpoint_000004"
    empty.mkdir()
    assert not any(checkpoint_is_complete(path) for path in (no_result, no_best, truncated, empty))
    # a registered checkpoint's presence check: misses the truncation only
    assert not any(checkpoint_is_complete(path, read_archives=False) for path in (no_result, no_best, empty))
    assert checkpoint_is_complete(truncated, read_archives=False)


def test_a_gone_checkpoint_is_replaced_by_the_newest_complete_one_which_is_reported_again(trial_dir):
    write_checkpoint(trial_dir / "checkpoint_000000", 1)
    write_checkpoint(trial_dir / "checkpoint_000002", 3)
    cut = write_checkpoint(trial_dir / "checkpoint_000003", 4)  # its copy was cut off by the kill
    (cut / TRAINER_STATE_FILE).unlink()
    gone = trial_dir / "checkpoint_000001"
    gone.mkdir()  # as the resuming driver recreates it (recreate_gone_checkpoints)

    start, reports = attempt(trial_dir, gone)

    assert Path(start.checkpoint.path) == trial_dir / "checkpoint_000002" and not start.ended
    ((result, saved),) = reports  # Tune's record and the MLflow run become epoch 3
    assert result["epoch"] == 3 and len(saved["history"]) == 3


def test_with_no_complete_checkpoint_left_the_trial_starts_afresh(trial_dir):
    half = write_checkpoint(trial_dir / "checkpoint_000001", 2)
    (half / MODEL_FILE).unlink()
    start, reports = attempt(trial_dir, half)
    assert start.checkpoint is None and not start.ended and reports == []


def test_a_restored_checkpoint_that_a_guard_stopped_on_ends_the_trial(trial_dir):
    stopped = write_checkpoint(trial_dir / "checkpoint_000001", 2, guard="non_finite")
    start, reports = attempt(trial_dir, stopped)
    assert start.ended and reports == []  # Tune's record is already this checkpoint


def test_a_whole_restored_checkpoint_is_used_as_it_is(trial_dir):
    write_checkpoint(trial_dir / "checkpoint_000002", 3)  # newer, left by a killed attempt
    restored = write_checkpoint(trial_dir / "checkpoint_000001", 2)
    start, reports = attempt(trial_dir, restored)
    assert Path(start.checkpoint.path) == restored and not start.ended and reports == []


def test_an_ended_trial_reports_the_checkpoint_its_marker_names(trial_dir):
    write_checkpoint(trial_dir / "checkpoint_000000", 1)
    write_checkpoint(trial_dir / "checkpoint_000002", 3)
    (trial_dir / ENDED_MARKER).write_text(json.dumps({"checkpoint": "checkpoint_000002"}))
    start, reports = attempt(trial_dir, trial_dir / "checkpoint_000000")
    assert start.ended and [result["epoch"] for result, _ in reports] == [3]


def test_newest_complete_checkpoint_counts_epochs_not_directory_numbers(trial_dir):
    # a trial restarted from scratch writes checkpoint_000000 again, after a killed attempt's _000001
    write_checkpoint(trial_dir / "checkpoint_000000", 3)
    write_checkpoint(trial_dir / "checkpoint_000001", 2)
    newest = newest_complete_checkpoint(str(trial_dir), LocalFileSystem())
    assert Path(newest.path) == trial_dir / "checkpoint_000000"
    assert newest_complete_checkpoint(str(trial_dir / "missing"), LocalFileSystem()) is None


def _one_report(config):
    tune.report({"x": config["x"]})


def test_trial_directories_tune_has_no_record_of_are_removed_and_only_those(tmp_path):
    """A driver killed after it started a trial but before Tune saved its state leaves that
    trial's directory (checkpoints and all) beside the trials Tune resumes (seen in the
    random-kill soak); the trial's MLflow run is deleted on resume, so its directory goes too."""
    import ray

    ray.init(address="local", num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        tune.Tuner(_one_report, param_space={"x": tune.grid_search([1, 2])},
                   tune_config=tune.TuneConfig(trial_dirname_creator=lambda trial: f"trial_{trial.trial_id}"),
                   run_config=tune.RunConfig(storage_path=str(tmp_path), name="sweep", verbose=0)).fit()
    finally:
        ray.shutdown()
    experiment = tmp_path / "sweep"
    recorded = sorted(path.name for path in experiment.glob("trial_*"))
    assert len(recorded) == 2
    unrecorded = experiment / "trial_5eb0a1d2"
    write_checkpoint(unrecorded / "checkpoint_000000", 1)
    (experiment / "plots").mkdir()  # not a trial directory: left alone

    assert remove_unrecorded_trials(str(experiment)) == [str(unrecorded)]
    assert not unrecorded.exists()
    assert sorted(path.name for path in experiment.glob("trial_*")) == recorded
    assert (experiment / "plots").is_dir()
    assert remove_unrecorded_trials(str(experiment)) == []
