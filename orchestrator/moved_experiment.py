"""A resumed experiment goes on where its directory is now, also when it was moved.

Ray Tune resumes an experiment directory that was moved or copied (to a larger disk, from a
cluster's head to a workstation): it points the trials it restores at the new place. Two
things the sweep hands Tune were pickled with the old place and not updated:
- the Optuna study's storage: a plain `RDBStorage` pickles its URL, the absolute path of
  `optuna.db` when the sweep began. The old path gone, the resume died in sqlite's "unable to
  open database file"; still there (a copy), the copy's trials were told to the original's
  study. `StudyStorage` opens the study file of the directory being resumed.
- the search generator's experiment, whose storage every trial sampled after the resume
  takes: those trials failed on Ray's "Unable to set up cluster storage" (or, the old path
  still there, wrote into it). `ResumableSearchGenerator` points it at the new place.

Both learn the place from `restoring_experiment(dir)`, around `Tuner.restore` (where Tune
unpickles them from tuner.pkl). A context variable and not an argument because the
unpickling happens inside Tune; not a global because the tasks of a sweep restore their
experiments side by side in threads.
"""

from __future__ import annotations

import contextlib
import contextvars
import copy
import posixpath
from pathlib import Path
from typing import Any, Iterator

import optuna
import pyarrow.fs
from ray.tune.search import SearchGenerator

from orchestrator.data_access import is_uri

STUDY_FILE = "optuna.db"

_RESTORING_IN: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "experiment_dir_being_restored", default=None)


@contextlib.contextmanager
def restoring_experiment(experiment_dir: str) -> Iterator[None]:
    """What is unpickled in this block (in this thread) belongs to the experiment at
    `experiment_dir` (a local path or an object-store URI), wherever it was pickled."""
    token = _RESTORING_IN.set(str(experiment_dir))
    try:
        yield
    finally:
        _RESTORING_IN.reset(token)


def study_url(experiment_dir: str | Path) -> str:
    """The sqlite URL of the study file in a local experiment directory."""
    return f"sqlite:///{Path(experiment_dir).resolve() / STUDY_FILE}"


class StudyStorage(optuna.storages.RDBStorage):
    """RDBStorage of `<experiment_dir>/optuna.db`; unpickled inside `restoring_experiment`,
    the study file of the experiment being restored."""

    def __init__(self, experiment_dir: str | Path):
        self.experiment_dir = str(Path(experiment_dir).resolve())
        super().__init__(study_url(self.experiment_dir))

    def __setstate__(self, state: dict[Any, Any]) -> None:
        restoring_in = _RESTORING_IN.get()
        if restoring_in is not None:
            moved_to = str(Path(restoring_in).resolve())
            state = {**state, "experiment_dir": moved_to, "url": study_url(moved_to)}
        super().__setstate__(state)


class ResumableSearchGenerator(SearchGenerator):
    """Tune's SearchGenerator whose trials sampled after a resume are kept in the experiment
    directory being resumed (module docstring)."""

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._resumed_in = _RESTORING_IN.get()

    def set_state(self, state: dict[str, Any]) -> None:
        super().set_state(state)
        resumed_in = getattr(self, "_resumed_in", None)
        if resumed_in is None or self._experiment is None:
            return
        pickled = self._experiment.storage
        filesystem, path = pyarrow.fs.FileSystem.from_uri(
            resumed_in if is_uri(resumed_in) else str(Path(resumed_in).resolve()))
        storage_fs_path, name = posixpath.split(path.rstrip("/"))
        if (storage_fs_path, name) == (pickled.storage_fs_path, pickled.experiment_dir_name):
            return
        # What Tune does to the trials it restores (TuneController._restore_trials).
        here = copy.copy(pickled)
        if not pickled.custom_fs_provided:
            here.storage_filesystem = filesystem
        here.storage_fs_path, here.experiment_dir_name = storage_fs_path, name
        self._experiment.storage = self._experiment.spec["storage"] = here
