"""Where an attempt of a trial starts, from what the trial's own directory holds.

Ray Tune's saved record of a trial can lag behind the trial after its sweep's driver was killed:
Tune saves its experiment state every so often, not at every report, while it deletes a trial's
older checkpoints (`CheckpointConfig.num_to_keep`) as soon as a newer one registers, and marks
trials ended (training.mark_ended) when they end. So a resumed sweep may hand a trial

- an older checkpoint, or none, for a trial that had ended: its ended marker names the
  checkpoint it really ended with;
- a checkpoint that Tune has since deleted, or deleted half way: the trial's newest complete
  checkpoint (there is one: Tune keeps the latest) is where the trial had got to.

In both cases the trial first reports that checkpoint's last epoch again, so that Tune's record of
the trial (last result, latest checkpoint) and the MLflow run mirroring it become the trial's real
state, then goes on from it, or ends. Tune itself refuses to start an attempt from a checkpoint
directory that is gone, so the resuming driver first recreates such directories, empty
(`recreate_gone_checkpoints`): the attempt then finds where its trial had got to. A trial the
killed driver started after Tune's last save is in no saved record at all; Tune samples a new
trial in its place, so its directory is removed (`remove_unrecorded_trials`).
"""

from __future__ import annotations

import posixpath
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ray import tune

from orchestrator.report_thread import Reporter
from orchestrator.training import checkpoint_is_complete, ended_checkpoint, has_ended, read_result

TRIAL_DIR_PREFIX = "trial_"  # a trial's directory is TRIAL_DIR_PREFIX + its id (sweep.py)
GUARD_KEY = "health/guard"  # in a result a health guard stopped the trial on (health/base.py)


@dataclass(frozen=True)
class ResumePoint:
    checkpoint: tune.Checkpoint | None  # what the attempt restores (None: it starts afresh)
    ended: bool  # the trial had ended: the attempt trains no epoch


def resume_point(restored: tune.Checkpoint | None, storage: Any, report: Reporter) -> ResumePoint:
    """Where this attempt starts, given the checkpoint Tune restores it from (None: none) and
    the trial's storage (Tune's StorageContext; None outside a Tune trial)."""
    if storage is None:  # run as a plain Ray task: nothing else to consult
        return ResumePoint(restored, restored is not None and has_ended(restored))
    trial_dir, filesystem = storage.trial_fs_path, storage.storage_filesystem
    final = ended_checkpoint(trial_dir, filesystem)
    if final is not None:
        if restored is None or not _same_checkpoint(final, restored):
            _report_again(final, report)
        return ResumePoint(final, True)
    if restored is None:
        return ResumePoint(None, False)
    if has_ended(restored):  # marked by an older version that named no checkpoint
        return ResumePoint(restored, True)
    start = restored
    if not _is_complete(restored):
        start = newest_complete_checkpoint(trial_dir, filesystem)
        where = "from scratch" if start is None else f"from {posixpath.basename(start.path)}"
        print(f"checkpoint {restored.path} that Ray Tune restores this trial from is gone or "
              f"incomplete (deleted after Tune last saved its state); resuming {where}",
              file=sys.stderr)
        if start is not None:
            _report_again(start, report)
    return ResumePoint(start, start is not None and bool(_last_result(start).get(GUARD_KEY)))


def recreate_gone_checkpoints(experiment_dir: str) -> list[str]:
    """Recreate, empty, the checkpoint directories that Tune's saved state names as the latest of
    trials it will resume and that are gone. Returns their paths."""
    from pyarrow.fs import FileType

    recreated = []
    for trial in _saved_trials(experiment_dir):
        checkpoint = trial.checkpoint
        if trial.status == "TERMINATED" or checkpoint is None:
            continue
        if checkpoint.filesystem.get_file_info(checkpoint.path).type == FileType.NotFound:
            checkpoint.filesystem.create_dir(checkpoint.path)
            recreated.append(checkpoint.path)
    return recreated


def remove_unrecorded_trials(experiment_dir: str) -> list[str]:
    """Delete the trial directories that Tune's saved state does not name: trials the killed
    driver started after Tune last saved its state. Tune never resumes them (it samples new
    trials in their place) and their MLflow runs are deleted (tracking/unfinished.py), so the
    sweep's directories stay Tune's trials. Returns their paths."""
    from pyarrow.fs import FileSelector, FileType

    recorded = {posixpath.basename(trial.path) for trial in _saved_trials(experiment_dir)}
    filesystem, path = _filesystem_and_path(experiment_dir)
    removed = []
    for entry in filesystem.get_file_info(FileSelector(path)):
        if (entry.type == FileType.Directory and entry.base_name.startswith(TRIAL_DIR_PREFIX)
                and entry.base_name not in recorded):
            filesystem.delete_dir(entry.path)
            removed.append(entry.path)
    return removed


def has_saved_state(experiment_dir: str) -> bool:
    """Whether Tune saved the experiment's state (a driver killed before its first save leaves
    only tuner.pkl, which Tuner.can_restore accepts but Tuner.restore cannot resume)."""
    from pyarrow.fs import FileSelector

    filesystem, path = _filesystem_and_path(experiment_dir)
    return any(entry.base_name.startswith("experiment_state-")
               for entry in filesystem.get_file_info(FileSelector(path, allow_not_found=True)))


def _saved_trials(experiment_dir: str) -> list:
    """The trials of Tune's saved experiment state; none when it has none."""
    from ray.tune import ExperimentAnalysis

    return ExperimentAnalysis(experiment_dir).trials if has_saved_state(experiment_dir) else []


def _filesystem_and_path(experiment_dir: str):
    from pyarrow.fs import FileSystem, LocalFileSystem

    if "://" in experiment_dir:
        return FileSystem.from_uri(experiment_dir)
    return LocalFileSystem(), str(Path(experiment_dir).resolve())


def newest_complete_checkpoint(trial_dir: str, filesystem: Any) -> tune.Checkpoint | None:
    """The complete checkpoint in `trial_dir` with the longest history (None: there is none)."""
    from pyarrow.fs import FileSelector, FileType

    entries = filesystem.get_file_info(FileSelector(trial_dir, allow_not_found=True))
    newest, newest_epochs = None, 0
    for entry in sorted(entries, key=lambda entry: entry.path, reverse=True):
        if entry.type != FileType.Directory or not entry.base_name.startswith("checkpoint_"):
            continue
        checkpoint = tune.Checkpoint(entry.path, filesystem=filesystem)
        with checkpoint.as_directory() as directory:
            if not checkpoint_is_complete(Path(directory)):
                continue
            epochs = len(read_result(Path(directory))["history"])
        if epochs > newest_epochs:
            newest, newest_epochs = checkpoint, epochs
    return newest


def _is_complete(checkpoint: tune.Checkpoint) -> bool:
    """For the checkpoint Tune restores: registered whole, so only files a deletion took are
    looked for (the attempt reads them all next anyway)."""
    try:
        with checkpoint.as_directory() as directory:
            return checkpoint_is_complete(Path(directory), read_archives=False)
    except OSError:  # a remote checkpoint that is gone
        return False


def _last_result(checkpoint: tune.Checkpoint) -> dict[str, Any]:
    with checkpoint.as_directory() as directory:
        return read_result(Path(directory))["history"][-1]


def _report_again(checkpoint: tune.Checkpoint, report: Reporter) -> None:
    """Report the checkpoint's last epoch with a copy of it (Tune stores it as a new one)."""
    with tempfile.TemporaryDirectory() as directory:
        checkpoint.to_directory(directory)
        report(read_result(Path(directory))["history"][-1], Path(directory))


def _same_checkpoint(first: tune.Checkpoint, second: tune.Checkpoint) -> bool:
    return first.path.rstrip("/") == second.path.rstrip("/")
