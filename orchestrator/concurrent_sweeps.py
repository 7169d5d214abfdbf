"""Several tasks' sweeps at once on one Ray cluster: a thread per task, one Ctrl-C for all.

Each task's Tune experiment (`sweep.run`) runs in a thread of its own, with its own searcher,
scheduler and MLflow tracker; Ray places every task's trials on the same cluster, so the slots
one task leaves idle at its last rungs run another task's trials.

Ctrl-C: Ray Tune ends an experiment on Ctrl-C through an event that its SIGINT handler sets
(`ray.tune.tune._setup_signal_catching`): the tuning loop stops stepping, saves the experiment
state with the trials in flight as they are, and stops their workers, each trial keeping its
last checkpoint, so that a restore continues them. Python lets only the main thread install a
signal handler, so in a task's thread Tune makes that event and nothing ever sets it. Here the
main thread catches Ctrl-C (interruption.CtrlCStopsAll) and every task's loop watches the one
event it sets instead of its own, so each task stops as a lone sweep stops on Ctrl-C and
`--resume` continues every task.

Trials first: a task whose experiment has ended draws its best trials' figures (Ray tasks
with a trial's resources, best_figures.py) only once every task's experiment has ended.
Drawn at once, they held slots that other tasks' trials were waiting for: bench/cluster_use.py
found about half the idle slot-seconds of a sweep of the five demo tasks in those drawings.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import threading
from typing import Callable, Iterator, TypeVar

from orchestrator.interruption import CtrlCStopsAll
from orchestrator.slot_shares import SlotShares, share_slots, unshare_slots
from orchestrator.user_errors import UsageError

Result = TypeVar("Result")
JOIN_POLL_SECONDS = 0.2  # the main thread wakes this often, so a Ctrl-C is handled at once
PENDING_TRIALS = "TUNE_MAX_PENDING_TRIALS_PG"  # how many trials an experiment stages at once


def sweep_side_by_side(
    task_names: list[str],
    sweep_one: Callable[[int, threading.Event, Callable[[], None]], Result],
    resume_command: str,
    slots: int = 0,
) -> list[Result]:
    """Run `sweep_one(index, stop, wait_for_others)` for every task at once, a thread each;
    returns their results in task order.

    `stop` is set by a Ctrl-C (every task's experiment then stops, resumable) and when one task
    raises: the others stop as on a Ctrl-C, and the first error is raised here once all ended.
    `wait_for_others()`, called by a task once its experiment has ended, returns when every
    task's experiment has ended (or `stop` is set): what a task does after it, such as drawing
    its best trials, then takes no slot another task's trials wait for.
    `slots`: how many trials the cluster holds at once (slot_shares.cluster_slots); when
    given, the tasks' searchers built with `share_slots` keep to their shares of them.
    Call from the main thread.
    """
    results: dict[int, Result] = {}
    errors: list[BaseException] = []
    with CtrlCStopsAll(resume_command) as interrupt, _tune_stops_on(interrupt.stop), \
            _slots_shared(task_names, slots):
        experiments = ExperimentsEnding(len(task_names), interrupt.stop)

        def sweep(index: int) -> None:
            try:
                results[index] = sweep_one(index, interrupt.stop,
                                           lambda: experiments.ended_wait_for_others(index))
            except BaseException as error:  # noqa: BLE001 - handed to the main thread
                errors.append(error)
                interrupt.stop.set()
            finally:  # a task that raised before its experiment ended holds no one back
                experiments.ended(index)

        threads = [threading.Thread(target=sweep, args=(index,), name=f"sweep-{name}", daemon=True)
                   for index, name in enumerate(task_names)]
        for thread in threads:
            thread.start()
        for thread in threads:
            while thread.is_alive():
                thread.join(JOIN_POLL_SECONDS)
    if errors:
        raise errors[0]
    return [results[index] for index in range(len(task_names))]


class ExperimentsEnding:
    """Which of `count` tasks' experiments have ended; lets one wait for all the others.

    stop: when set (Ctrl-C, or a task raised), nobody waits any longer.
    """

    def __init__(self, count: int, stop: threading.Event):
        self._running = set(range(count))
        self._stop = stop
        self._changed = threading.Condition()

    def ended(self, index: int) -> None:
        """Task `index`'s experiment has ended (again: nothing changes)."""
        with self._changed:
            self._running.discard(index)
            self._changed.notify_all()

    def ended_wait_for_others(self, index: int) -> None:
        """Mark task `index`'s experiment ended; return once every experiment has, or `stop` is set."""
        self.ended(index)
        with self._changed:
            while self._running and not self._stop.is_set():
                self._changed.wait(JOIN_POLL_SECONDS)  # `stop` is an Event: polled, not notified


@contextlib.contextmanager
def _slots_shared(task_names: list[str], slots: int) -> Iterator[None]:
    """While inside, the tasks' trials in flight keep to their shares of `slots`
    (slot_shares.py), and each task may ask for a slot for as many trials at once as its share
    allows: Tune's own limit with a searcher is one at a time (TUNE_MAX_PENDING_TRIALS_PG, read
    when an experiment starts; one value for every experiment of the process, which is what
    is wanted here), so a task left alone at the end widened by one new worker at a time."""
    if slots <= 0:
        yield
        return
    pending_before = os.environ.get(PENDING_TRIALS)
    if pending_before is None:  # the user's own setting wins
        os.environ[PENDING_TRIALS] = str(slots)
    share_slots(SlotShares(task_names, slots), task_names)
    try:
        yield
    finally:
        unshare_slots(task_names)
        if pending_before is None:
            os.environ.pop(PENDING_TRIALS, None)


@contextlib.contextmanager
def _tune_stops_on(stop: threading.Event) -> Iterator[None]:
    """While inside, a Tune experiment started outside the main thread ends when `stop` is set,
    as one in the main thread ends on Ctrl-C (the module's docstring says why)."""
    tune_module = importlib.import_module("ray.tune.tune")
    own_event = getattr(tune_module, "_setup_signal_catching", None)
    if own_event is None:  # a Ray other than the one the project pins (pyproject.toml)
        raise UsageError("this Ray version cannot stop tasks swept side by side on Ctrl-C; "
                           "pass --one-at-a-time or install the Ray version the project pins")

    def watched_event() -> threading.Event:
        if threading.current_thread() is threading.main_thread():
            return own_event()
        return stop

    tune_module._setup_signal_catching = watched_event
    try:
        yield
    finally:
        tune_module._setup_signal_catching = own_event
