"""Ctrl-C before Ray Tune takes over: remembered, so a press Ray's start swallowed still stops.

Light on purpose (no Ray): the CLI installs this before it imports anything heavy.
"""

from __future__ import annotations

import signal
import sys
import threading

EXIT_CODE = 130  # 128 + SIGINT: what a shell reports for a command ended by Ctrl-C

_CTRL_C_PRESSED = threading.Event()


def remember_ctrl_c() -> None:
    """Make Ctrl-C raise KeyboardInterrupt as usual, and be remembered.

    Python drops an exception raised in an at-fork callback ("Exception ignored in: <function
    _releaseLock>"), and Ray forks while it starts its processes: a Ctrl-C landing in that
    moment was lost, and the sweep ran on to its end (the random Ctrl-C soak hit it). The steps
    before the trials start ask `raise_if_ctrl_c` again; `InterruptWatch` and `CtrlCStopsAll`
    stop the sweep at once when it was pressed before they took over. Main thread only.
    """
    def remembered(signum, frame):
        _CTRL_C_PRESSED.set()
        signal.default_int_handler(signum, frame)

    signal.signal(signal.SIGINT, remembered)
    report_unraisable = sys.unraisablehook
    if not getattr(report_unraisable, "keeps_ctrl_c_quiet", False):
        def unraisable(info) -> None:
            # The dropped Ctrl-C's traceback ("Exception ignored in: ..."): the sweep ends with
            # one line for it instead, or, dropped in the exit's clean-up, has already ended.
            if info.exc_type is not KeyboardInterrupt:
                report_unraisable(info)

        unraisable.keeps_ctrl_c_quiet = True
        sys.unraisablehook = unraisable


def ctrl_c_pressed() -> bool:
    return _CTRL_C_PRESSED.is_set()


def raise_if_ctrl_c() -> None:
    """Raise the KeyboardInterrupt of a Ctrl-C that was pressed and then lost."""
    if ctrl_c_pressed():
        raise KeyboardInterrupt

