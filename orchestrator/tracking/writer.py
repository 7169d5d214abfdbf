"""Tracking calls off the trials' path: one writer thread runs them in the order they came.

Ray Tune runs its callbacks on the driver after a trial reported and before it asks the trial
for its next result, so a trial waits for every MLflow call a report causes (its function is
blocked in `tune.report`). A sqlite store takes tens of milliseconds per call, several calls per
epoch: with short epochs that was most of what a trial spent beyond training
(bench/trial_overhead.py). The tracker hands its calls to this writer instead and returns at once;
`flush` waits for every call handed over so far (the sweep's end does, before it closes runs).
Calls still run through GuardedCalls: a failing store is recorded, never raised.
"""

from __future__ import annotations

import queue
import threading
from typing import Any, Callable

from orchestrator.tracking.store import GuardedCalls


class TrackingWriter:
    """Runs tracking calls in order on one daemon thread; `flush` waits for them."""

    def __init__(self, calls: GuardedCalls):
        self.calls = calls
        self._queue: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, what: str, call: Callable[[], Any]) -> None:
        """Run `call` after every call submitted before it (`what` names it in a failure)."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                # A daemon: a process that exits without a flush (a second Ctrl-C) does not
                # hang on its tracking; a resumed sweep rebuilds runs from the checkpoints.
                self._thread = threading.Thread(target=self._run, name="mlflow-writer", daemon=True)
                self._thread.start()
        self._queue.put((what, call))

    def flush(self) -> None:
        """Wait until every call submitted so far has run."""
        self._queue.join()

    def _run(self) -> None:
        while True:
            what, call = self._queue.get()
            try:
                self.calls(what, call)
            finally:
                self._queue.task_done()
