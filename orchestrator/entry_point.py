"""The `orchestrate` console script.

A Ctrl-C while the CLI loads ends the command as a Ctrl-C later does (one line, exit code 130),
not with a traceback of the import. (The commands import Ray, MLflow and torch themselves, where
their own Ctrl-C handling applies.)
"""

from __future__ import annotations

import sys

from orchestrator.ctrl_c import EXIT_CODE as INTERRUPTED_EXIT_CODE


def main() -> None:
    try:
        from orchestrator.cli import app
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    app()
