"""Checkpoint helpers of the generic loop: the ended-trial marker a resumed sweep relies on."""

import json
from pathlib import Path

from pyarrow.fs import LocalFileSystem
from ray import tune

from orchestrator.training import ended_checkpoint, has_ended, mark_ended


def test_a_trial_marked_ended_is_recognised_from_any_of_its_checkpoints(tmp_path):
    trial_dir = tmp_path / "trial_abc"
    older, latest = trial_dir / "checkpoint_000000", trial_dir / "checkpoint_000003"
    older.mkdir(parents=True)
    latest.mkdir()
    assert not has_ended(tune.Checkpoint.from_directory(str(older)))
    mark_ended(tune.Checkpoint.from_directory(str(latest)))
    # Tune may restore from an older checkpoint than the last one: the marker still shows
    assert has_ended(tune.Checkpoint.from_directory(str(older)))
    assert not has_ended(tune.Checkpoint.from_directory(str(tmp_path / "trial_other")))


def _checkpoint_with_epochs(directory, epochs: int) -> tune.Checkpoint:
    directory.mkdir(parents=True)
    history = [{"epoch": epoch, "val/score": 0.1 * epoch} for epoch in range(1, epochs + 1)]
    (directory / "result.json").write_text(json.dumps({"history": history, "best_epoch": epochs}))
    return tune.Checkpoint.from_directory(str(directory))


def test_a_trial_marked_ended_names_the_checkpoint_it_ended_with(tmp_path):
    # the driver died after the trial ended at epoch 3, before Tune's saved state recorded it:
    # Tune restores epoch 2 (or nothing), the marker names epoch 3's checkpoint to report again
    trial_dir = tmp_path / "trial_abc"
    _checkpoint_with_epochs(trial_dir / "checkpoint_000001", 2)
    final = _checkpoint_with_epochs(trial_dir / "checkpoint_000002", 3)
    filesystem = LocalFileSystem()
    assert ended_checkpoint(str(trial_dir), filesystem) is None  # not ended yet
    mark_ended(final)
    found = ended_checkpoint(str(trial_dir), filesystem)
    assert found.path == final.path
    with found.as_directory() as directory:
        assert len(json.loads((Path(directory) / "result.json").read_text())["history"]) == 3


def test_a_marker_naming_no_checkpoint_names_none(tmp_path):
    trial_dir = tmp_path / "trial_abc"
    _checkpoint_with_epochs(trial_dir / "checkpoint_000001", 2)
    (trial_dir / "ended.json").write_text("{}")  # written before markers named a checkpoint
    assert ended_checkpoint(str(trial_dir), LocalFileSystem()) is None
    (trial_dir / "ended.json").write_text(json.dumps({"checkpoint": "checkpoint_000009"}))  # gone
    assert ended_checkpoint(str(trial_dir), LocalFileSystem()) is None
