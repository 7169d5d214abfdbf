"""The `orchestrate` console script.

Loading the CLI imports Ray, MLflow and torch (seconds); a Ctrl-C in that time ends the command
as a Ctrl-C later does (one line, exit code 130), not with a traceback of the import.
"""

from __future__ import annotations

import sys

INTERRUPTED_EXIT_CODE = 130  # orchestrator.interruption.EXIT_CODE, which imports Ray


def main() -> None:
    try:
        from orchestrator.cli import app
    except KeyboardInterrupt:
        print("interrupted (Ctrl-C)", file=sys.stderr)
        sys.exit(INTERRUPTED_EXIT_CODE)
    app()
