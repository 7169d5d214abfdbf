"""The `orchestrate` console script.

A Ctrl-C while the CLI loads ends the command as a Ctrl-C later does (one line, exit code 130),
not with a traceback of the import. (The commands import Ray, MLflow and torch themselves, where
their own Ctrl-C handling applies.)
"""

from __future__ import annotations

import gc
import sys

from orchestrator.ctrl_c import EXIT_CODE as INTERRUPTED_EXIT_CODE


def main() -> None:
    try:
        from orchestrator.cli import app
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    try:
        app()
    finally:
        # Python's last collections at exit walk every object torch, Ray and MLflow made: 2.4 s
        # of a sweep's exit on the 2-core machine, 0.4 s frozen. Nothing is lost by it: objects
        # are still freed by reference count, and objects in cycles are never promised a
        # finaliser at exit.
        gc.freeze()
