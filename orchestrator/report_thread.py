"""A trial's reports go to Tune from a thread of their own, so the trial trains on meanwhile.

`tune.report` in a function trainable blocks until the driver has handled the report: Tune's
controller runs the stopper, the scheduler, the searcher and every callback, asks the worker
for the checkpoint in a second round trip, registers it (deleting one no longer kept), and
only then lets the function go on; the checkpoint is copied into the trial's storage before
that. `ReportThread` makes that call on a thread of its own while the trial loop trains the
next epoch. One report is in flight at most, so reports reach Tune in order.

A report may end the trial (ASHA at a rung, the guards' stopper, the budget, a Ctrl-C): Tune
then ends the reporting call with SystemExit(0). The loop calls `raise_if_ended` before every
batch and stops within one batch (`EndedByTune`); the epoch it had begun is dropped, never
reported, and the trial's latest checkpoint is the one of the report that ended it. A stop
thus frees the worker at most one batch later than a loop that waited for every report would
(Tune waits up to 2 s for the trial's thread to end before it reuses the worker).
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from pathlib import Path
from types import TracebackType
from typing import Any, Callable

# Sends one epoch's result with the directory of its checkpoint (in a trial: `tune.report`).
Reporter = Callable[[dict[str, Any], Path], None]


class EndedByTune(Exception):
    """Tune ended the trial when it handled one of the trial's reports."""


class ReportThread:
    """Sends a trial's reports on a thread of its own, one at a time and in order.

    Use as a context manager around the trial's epochs. On leaving it waits for the report in
    flight, then raises what that report raised; it swallows EndedByTune, and any error of an
    epoch begun after a report had ended the trial (that epoch was never going to count).
    `report` runs on the report thread, beside the next epoch: it must not touch the model.
    """

    def __init__(self, report: Reporter):
        self._report = report
        self._thread: threading.Thread | None = None
        self._unsent: Path | None = None
        self._ended = False
        self._error: BaseException | None = None

    def __enter__(self) -> "ReportThread":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> bool:
        if self._unsent is not None:
            shutil.rmtree(self._unsent, ignore_errors=True)
            self._unsent = None
        self._join()
        if error is None:
            if self._error is not None:
                raise self._error
            return False
        # An error with a report in flight: that report reached Tune first (joined above), so
        # a retry resumes after its epoch.
        return isinstance(error, EndedByTune) or self._ended

    def checkpoint_directory(self) -> Path:
        """A new empty directory for the next report's checkpoint; removed once that report has
        returned (or when the trial ends without sending it)."""
        self._unsent = Path(tempfile.mkdtemp(prefix="checkpoint-"))
        return self._unsent

    def send(self, result: dict[str, Any], checkpoint_dir: Path) -> None:
        """Wait for the report in flight, then send this one and return at once.

        Raises EndedByTune, or what the earlier report raised, instead of sending.
        """
        self._join()
        self.raise_if_ended()
        self._unsent = None  # the report thread removes it now
        self._thread = threading.Thread(
            target=self._send, args=(result, checkpoint_dir), name="trial-report", daemon=True)
        self._thread.start()

    def raise_if_ended(self) -> None:
        """Raise EndedByTune if a report ended the trial, or the error a report raised."""
        if self._error is not None:
            raise self._error
        if self._ended:
            raise EndedByTune()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _send(self, result: dict[str, Any], checkpoint_dir: Path) -> None:
        try:
            self._report(result, checkpoint_dir)
        except SystemExit as stop:  # how tune.report ends a trial Tune decided to stop
            if stop.code in (0, None):
                self._ended = True
            else:
                self._error = stop
        except BaseException as error:  # noqa: BLE001 - raised in the trial loop instead
            self._error = error
        finally:
            shutil.rmtree(checkpoint_dir, ignore_errors=True)
