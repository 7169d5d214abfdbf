"""Ctrl-C during a sweep: the first stops it cleanly and says how to resume, a second quits.

Ray Tune catches the first SIGINT itself: it stops the trials in flight (each keeps its last
checkpoint), saves the experiment so that `--resume` continues it, and returns as if the sweep
had ended. `InterruptWatch`, a Tune callback, notices that SIGINT so the sweep can end as
interrupted (exit code 130), and makes a second Ctrl-C end the process at once. Tasks swept
side by side run in threads, where Tune catches no signal: `CtrlCStopsAll` catches it in the
main thread and stops them all the same way (orchestrator/concurrent_sweeps.py).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from typing import Any

from ray import tune

from orchestrator.ctrl_c import EXIT_CODE, ctrl_c_pressed


# What Ray Tune logs about an interruption, which our own lines replace: its notice, its
# `Tuner.restore(...)` advice (`orchestrate sweep --resume` is the way here), and the trials
# that never started having no results.
TUNE_INTERRUPTION_LOGS = {
    "ray.tune.tune": ("Stop signal received", "Experiment has been interrupted",
                      "Trials did not complete"),
    "ray.tune.analysis.experiment_analysis": ("Failed to fetch metrics",),
}


class _DropMessages(logging.Filter):
    def __init__(self, prefixes: tuple[str, ...]):
        super().__init__()
        self.prefixes = prefixes

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefixes)


class _DropVanishedCheckpointDeletion(logging.Filter):
    """Ray Tune's traceback when it deletes a checkpoint that is already gone.

    A driver killed after Tune deleted a trial's old checkpoint, before Tune saved its state
    again, is resumed with that checkpoint still listed; the next checkpoint makes Tune delete
    it once more and log FileNotFoundError with a traceback. Nothing is lost (Tune has already
    dropped it from its list, and the trial's later checkpoints are there), so it stays off the
    terminal like the other resume notices (shown with --debug).
    """

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        return not (str(record.msg).startswith("Trial %s: Error handling checkpoint")
                    and isinstance(error, FileNotFoundError))


def quiet_tune_interruption_logs() -> None:
    """Keep Ray Tune's own interruption messages off the terminal (shown with --debug)."""
    for logger_name, prefixes in TUNE_INTERRUPTION_LOGS.items():
        logger = logging.getLogger(logger_name)
        if not any(isinstance(f, _DropMessages) for f in logger.filters):
            logger.addFilter(_DropMessages(prefixes))
    controller = logging.getLogger("ray.tune.execution.tune_controller")
    if not any(isinstance(f, _DropVanishedCheckpointDeletion) for f in controller.filters):
        controller.addFilter(_DropVanishedCheckpointDeletion())


class InterruptWatch(tune.Callback):
    """Records whether the running sweep got a Ctrl-C; place it in the sweep's callbacks."""

    def __init__(self, resume_command: str):
        self.resume_command = resume_command
        self.interrupted = False

    # Tune pickles its callbacks with the experiment state; an interruption belongs to the
    # process that saw it.
    def __getstate__(self) -> dict[str, Any]:
        return {"resume_command": self.resume_command, "interrupted": False}

    def setup(self, **info):
        # Tune calls this after it installed its own SIGINT handler, which this one wraps.
        if threading.current_thread() is not threading.main_thread():
            return
        tune_handler = signal.getsignal(signal.SIGINT)

        def first_interrupt(signum, frame):
            self.interrupted = True
            signal.signal(signal.SIGINT, self.quit_at_once)
            sys.stderr.write("\nCtrl-C: stopping the sweep; the trials in flight keep their last "
                             "checkpoint (Ctrl-C again to quit at once)\n")
            sys.stderr.flush()
            if callable(tune_handler):
                tune_handler(signum, frame)  # Tune stops, then puts back the handler before it
            signal.signal(signal.SIGINT, self.quit_at_once)

        signal.signal(signal.SIGINT, first_interrupt)
        if ctrl_c_pressed():  # pressed while Tune started, and lost (remember_ctrl_c)
            first_interrupt(signal.SIGINT, None)

    def quit_at_once(self, signum, frame) -> None:
        """A second Ctrl-C: end now. MLflow runs still RUNNING are reopened by the resume."""
        quit_at_once(self.resume_command)


def quit_at_once(resume_command: str) -> None:
    """End the process now (a second Ctrl-C), saying how to continue the sweep."""
    sys.stderr.write(f"\nSecond Ctrl-C: quitting now. Continue the sweep with:\n"
                     f"  {resume_command}\n")
    sys.stderr.flush()
    if sys.stdout.isatty():
        sys.stdout.write("\x1b[?25h")  # the live table hid the cursor
        sys.stdout.flush()
    os._exit(EXIT_CODE)


class CtrlCStopsAll:
    """Ctrl-C for tasks swept side by side (orchestrator/concurrent_sweeps.py), in the main
    thread: the first sets `stop`, which every task's experiment watches; a second quits.

    Use as a context manager around the sweeps; it puts back the handler it found.
    """

    def __init__(self, resume_command: str):
        self.resume_command = resume_command
        self.stop = threading.Event()
        self.handler_before: Any = None

    def __enter__(self) -> "CtrlCStopsAll":
        self.handler_before = signal.signal(signal.SIGINT, self._first_interrupt)
        if ctrl_c_pressed():  # pressed and lost before this took over (remember_ctrl_c)
            self._first_interrupt(signal.SIGINT, None)
        return self

    def __exit__(self, *exc_info) -> None:
        signal.signal(signal.SIGINT, self.handler_before)

    def _first_interrupt(self, signum, frame) -> None:
        signal.signal(signal.SIGINT, lambda signum, frame: quit_at_once(self.resume_command))
        self.stop.set()
        sys.stderr.write("\nCtrl-C: stopping the sweep of every task; the trials in flight keep "
                         "their last checkpoint (Ctrl-C again to quit at once)\n")
        sys.stderr.flush()
