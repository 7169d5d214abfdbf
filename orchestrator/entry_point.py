"""The `orchestrate` console script.

A Ctrl-C while the CLI loads ends the command as a Ctrl-C later does (one line, exit code 130),
not with a traceback of the import. (The commands import Ray, MLflow and torch themselves, where
their own Ctrl-C handling applies.) The command ends without the interpreter's teardown
(`exit_without_teardown`).
"""

from __future__ import annotations

import atexit
import os
import sys
import threading

from orchestrator.ctrl_c import EXIT_CODE as INTERRUPTED_EXIT_CODE


def main() -> None:
    try:
        from orchestrator.cli import app
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    try:
        app()
    except SystemExit as end:
        exit_without_teardown(end.code)


def exit_without_teardown(code: int | str | None) -> None:
    """End the process as Python's exit would, less the interpreter's teardown.

    That teardown (the last garbage collections over every object torch, Ray and MLflow made)
    took 2.4 s of a sweep's exit on the 2-core machine, and freezing the collector instead made
    triton's bindings print leak reports. What an exit must do is done here: the threads Python
    waits for, the atexit hooks (Ray's shutdown of its processes, logging's flush), the streams.
    """
    if isinstance(code, str):  # sys.exit("message"): printed, exit status 1
        print(code, file=sys.stderr)
        code = 1
    for thread in threading.enumerate():
        if thread is not threading.main_thread() and not thread.daemon:
            thread.join()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`): nothing more can be said
            pass
    os._exit(code or 0)
