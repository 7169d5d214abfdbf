"""A Ctrl-C that Python drops is not lost (orchestrator/interruption.py: remember_ctrl_c).

Python drops an exception raised in an at-fork callback, and Ray forks while it starts: the
random Ctrl-C soak saw a sweep interrupted in that moment print "Exception ignored in:
<function _releaseLock>... KeyboardInterrupt" and run on to its end, exit code 0. Each case
runs in a process of its own, where a fork gets its Ctrl-C inside an at-fork callback.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# A fork during which Ctrl-C arrives: the signal is sent, and handled, inside an at-fork
# callback (as it was inside logging's in the soak), so its KeyboardInterrupt is dropped.
FORK_WITH_CTRL_C = """
import logging, os, signal, sys, time
sys.path.insert(0, {repo!r})
from orchestrator.ctrl_c import ctrl_c_pressed, raise_if_ctrl_c, remember_ctrl_c
if {remember}:
    remember_ctrl_c()
os.register_at_fork(after_in_parent=lambda: (os.kill(os.getpid(), signal.SIGINT), time.sleep(0.2)))
child = os.fork()
if child == 0:
    os._exit(0)
os.waitpid(child, 0)
print("went on after the fork", flush=True)
raise_if_ctrl_c()
print("went on after the check", flush=True)
"""


@pytest.mark.parametrize("remember", [False, True], ids=["python-alone", "remembered"])
def test_a_ctrl_c_dropped_during_a_fork_is_raised_at_the_next_check(remember):
    ran = subprocess.run([sys.executable, "-c", FORK_WITH_CTRL_C.format(repo=str(REPO), remember=remember)],
                         capture_output=True, text=True, timeout=120,
                         # as from a terminal: a background shell starts its jobs with SIGINT ignored
                         preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    # The Ctrl-C is dropped: the program goes on past the fork.
    assert "went on after the fork" in ran.stdout
    if remember:  # and stops at the check; the dropped one's traceback is not printed
        assert "went on after the check" not in ran.stdout
        assert ran.returncode != 0 and ran.stderr.rstrip().endswith("KeyboardInterrupt")
        assert "Exception ignored" not in ran.stderr
    else:  # Python alone reports it as ignored and goes on to the end
        assert "Exception ignored" in ran.stderr and "KeyboardInterrupt" in ran.stderr
        assert "went on after the check" in ran.stdout and ran.returncode == 0
