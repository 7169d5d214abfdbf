"""The `orchestrate` console script.

A Ctrl-C while the CLI loads ends the command as a Ctrl-C later does (one line, exit code 130),
not with a traceback of the import. (The commands import Ray, MLflow and torch themselves, where
their own Ctrl-C handling applies.) The command ends without the interpreter's teardown
(`_end_without_teardown`).
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import sys

from orchestrator.ctrl_c import EXIT_CODE as INTERRUPTED_EXIT_CODE


def main() -> None:
    # Registered first, so it runs last, after every other exit hook (atexit runs them in reverse).
    atexit.register(_end_without_teardown)
    # Until a command's own handling takes over (cli._run_reporting_errors), a Ctrl-C ends it in
    # one line: while the CLI loads (not an import's traceback), and while typer builds the
    # command (click would turn it into "Aborted!" and exit status 1).
    signal.signal(signal.SIGINT, _interrupted_before_the_command)
    try:
        from orchestrator.cli import app

        app()
    except SystemExit as end:
        _EXIT_STATUS[0] = 1 if isinstance(end.code, str) else end.code or 0  # a message is printed, 1
        raise
    except KeyboardInterrupt:
        _EXIT_STATUS[0] = INTERRUPTED_EXIT_CODE
        raise


def _interrupted_before_the_command(signum, frame) -> None:
    print("interrupted (Ctrl-C)", file=sys.stderr)
    raise SystemExit(INTERRUPTED_EXIT_CODE)


_EXIT_STATUS = [1]  # until the command says otherwise: an exception escaped it (traceback printed)


def _end_without_teardown() -> None:
    """End the process once Python's exit has done what it must, less the interpreter's teardown.

    By the time the last exit hook runs, Python has joined the threads it waits for and run the
    other hooks (Ray's shutdown of its processes, MLflow's). What remains, the last garbage
    collections over every object torch, Ray and MLflow made, took 2.4 s of a sweep's exit on
    the 2-core machine; freezing the collector instead made triton's bindings print leak reports.
    """
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can be said
            pass
    os._exit(_EXIT_STATUS[0])
