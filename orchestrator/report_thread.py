"""A trial's reports go to Tune from a thread of their own, so the trial trains on meanwhile.

`tune.report` in a function trainable blocks until the driver has handled the report: Tune's
controller runs the stopper, the scheduler, the searcher and every callback, asks the worker
for the checkpoint in a second round trip, registers it (deleting one no longer kept), and
only then lets the function go on; the checkpoint is copied into the trial's storage before
that. `ReportThread` writes the checkpoint and makes that call on a thread of its own while
the trial loop trains the next epoch's batches. One report is in flight at most, so reports
reach Tune in order.

A report may end the trial (ASHA at a rung, the guards' stopper, the budget, a Ctrl-C): Tune
then ends the reporting call with SystemExit(0), when it stops the worker or hands it to the
next trial. The loop's own thread must then end the same way, at once: Tune waits for it
(`TUNE_FUNCTION_THREAD_TIMEOUT_S`, 2 s by default; a worker it cannot reuse costs the next
trial an error), and a trial function that returns instead is taken to have ended by itself
(Tune's wrapper then reports once more and waits for an answer that never comes). So the loop
calls `raise_if_ended` before every training batch, and `wait`s for the report in flight
before it evaluates (evaluation, probes and drawings cannot stop midway); either raises Tune's
SystemExit(0) in the loop's thread, which then ends as if its own `tune.report` had ended it.
The epoch begun since that report is dropped, never reported, and the trial's latest
checkpoint is the one of the report that ended it. What a stop at a rung costs: the batches
trained between the report and Tune's decision reaching the worker, on the trial's own slot,
which a loop that waited for each report left idle.
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
# Writes an epoch's checkpoint into the (empty) directory it is given.
CheckpointWriter = Callable[[Path], None]


class ReportThread:
    """Sends a trial's reports on a thread of its own, one at a time and in order.

    Use as a context manager around the trial's epochs. On leaving it waits for the report in
    flight; then, if a report ended the trial, it raises that report's SystemExit(0) in place
    of whatever the loop was doing (an epoch begun after the trial ended never counts), else
    what a report raised, else the loop's own error. `report` runs on the report thread,
    beside the next epoch's batches: it must not touch the model.
    """

    def __init__(self, report: Reporter):
        self._report = report
        self._thread: threading.Thread | None = None
        self._stop: SystemExit | None = None  # how a report ended the trial
        self._error: BaseException | None = None

    def __enter__(self) -> "ReportThread":
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 traceback: TracebackType | None) -> None:
        # With an error too: the report in flight reaches Tune first, so a retry resumes after
        # its epoch.
        self._join()
        if error is None or self._stop is not None:
            self.raise_if_ended()

    def send(self, result: dict[str, Any], write_checkpoint: CheckpointWriter) -> None:
        """Wait for the report in flight (`wait`), then return at once while the report thread
        writes this epoch's checkpoint into a new directory (`write_checkpoint`), reports
        `result` with it and removes it."""
        self.wait()
        self._thread = threading.Thread(target=self._send, args=(result, write_checkpoint),
                                        name="trial-report", daemon=True)
        self._thread.start()

    def raise_if_ended(self) -> None:
        """Raise the SystemExit(0) of a report that ended the trial, or what a report raised."""
        if self._stop is not None:
            raise self._stop
        if self._error is not None:
            raise self._error

    def wait(self) -> None:
        """Wait until the report in flight has returned, then `raise_if_ended`."""
        self._join()
        self.raise_if_ended()

    def _join(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None

    def _send(self, result: dict[str, Any], write_checkpoint: CheckpointWriter) -> None:
        directory = Path(tempfile.mkdtemp(prefix="checkpoint-"))
        try:
            write_checkpoint(directory)
            self._report(result, directory)
        except SystemExit as stop:
            if stop.code in (0, None):  # how tune.report ends a trial Tune decided to stop
                self._stop = stop
            else:
                self._error = stop
        except BaseException as error:  # noqa: BLE001 - raised in the trial loop instead
            self._error = error
        finally:
            shutil.rmtree(directory, ignore_errors=True)
