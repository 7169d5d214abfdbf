"""Fair shares of a cluster's trial slots among tasks swept side by side.

Each task's Tune experiment asks Ray for a slot for its next trial on its own, and keeps a slot
for its next trial once it has one (`reuse_actors`). Left alone, a task that already runs
trials got the slot another task freed as often as a task that had none: in
bench/cluster_use.py the last task to start waited 50 s for its first slot while others
widened. Here every task that still has trials to sample may have at most its share,
ceil(slots / such tasks), of trials in flight (running or waiting for a slot), so a freed slot
goes to a task below its share; and a task's share grows as the others finish sampling, so
the last one widens to the whole cluster.

The cap is a ConcurrencyLimiter around the task's searcher, reading the share when Tune asks
for a trial. Tune pickles searchers into the experiment's state: the limiter holds only the
task's name and finds the shares of this process (`SHARES`) by it; a sweep resumed one task
at a time finds none and runs uncapped (as its `--concurrency` says).
"""

from __future__ import annotations

import math
import threading
from typing import Any

import ray
from ray.tune.experiment import Trial
from ray.tune.schedulers import ASHAScheduler
from ray.tune.search import ConcurrencyLimiter, Searcher

UNCAPPED = 1_000_000  # ConcurrencyLimiter wants an int; no cluster holds this many trials


class SlotShares:
    """The tasks still sampling trials, and each one's share of `slots` trials in flight."""

    def __init__(self, task_names: list[str], slots: int):
        self.slots = max(1, slots)
        self._sampling = set(task_names)
        self._lock = threading.Lock()

    def share(self, task_name: str) -> int:
        """How many trials the task may have in flight now."""
        with self._lock:
            if task_name not in self._sampling:
                return self.slots
            return math.ceil(self.slots / len(self._sampling))

    def all_sampled(self, task_name: str) -> None:
        """The task has sampled all its trials: the others' shares grow."""
        with self._lock:
            self._sampling.discard(task_name)


SHARES: dict[str, SlotShares] = {}  # task name -> the shares it is swept under, in this process
_SHARES_LOCK = threading.Lock()


def share_slots(shares: SlotShares, task_names: list[str]) -> None:
    """Put the tasks' limiters (`SharedSlotLimiter`) under `shares` in this process."""
    with _SHARES_LOCK:
        SHARES.update({name: shares for name in task_names})


def unshare_slots(task_names: list[str]) -> None:
    with _SHARES_LOCK:
        for name in task_names:
            SHARES.pop(name, None)


class SharedSlotLimiter(ConcurrencyLimiter):
    """ConcurrencyLimiter whose limit is the task's share of the slots (module docstring),
    and at most `max_concurrent` (--concurrency) when given.

    searcher: the task's searcher; task_name: its key in `SHARES`; trials: how many trials
    the task samples in all.
    """

    def __init__(self, searcher: Searcher, task_name: str, trials: int,
                 max_concurrent: int | None = None):
        self.task_name = task_name
        self.trials = trials
        self.cap = max_concurrent or UNCAPPED
        self.sampled = 0
        # Tune stages as many trials at once as a ConcurrencyLimiter's limit when it starts
        # (unless TUNE_MAX_PENDING_TRIALS_PG says): --concurrency, else Tune's 1 for a searcher.
        super().__init__(searcher, max_concurrent=max_concurrent or 1)

    def suggest(self, trial_id: str) -> dict[str, Any] | None:
        shares = SHARES.get(self.task_name)
        self.max_concurrent = min(self.cap, shares.share(self.task_name)) if shares else self.cap
        suggestion = super().suggest(trial_id)
        if suggestion not in (None, Searcher.FINISHED):
            self.sampled += 1
        if shares and (self.sampled >= self.trials or suggestion == Searcher.FINISHED):
            shares.all_sampled(self.task_name)
        return suggestion


class NewestFirstASHA(ASHAScheduler):
    """ASHA that starts the newest pending trial first (Tune's schedulers start the oldest).

    With a share above one, a task has a trial running and the next one waiting while a new
    worker starts for it. When the running trial ends before that worker is up (pruned trials
    are often shorter than a worker's start), Tune gives the ended trial's worker to the
    trial the scheduler picks; the oldest is the waiting one, and Tune then kills the worker
    starting for it, which held a slot the whole time. bench/cluster_use.py found a slot
    caught in that loop for 100 s. The newest trial (just sampled) has no worker coming: it
    takes the free worker, and the starting one stays for the trial it was started for.
    """

    def choose_trial_to_run(self, tune_controller: Any) -> Trial | None:
        for trial in reversed(tune_controller.get_trials()):
            if trial.status == Trial.PENDING:
                return trial
        return super().choose_trial_to_run(tune_controller)  # paused ones, as Tune orders them


def cluster_slots(resources: dict[str, float]) -> int:
    """How many trials of `resources` (sweep.trial_resources: "cpu", "gpu" and custom ones)
    the alive nodes of the connected Ray cluster hold at once."""
    return slots_on([node.get("Resources", {}) for node in ray.nodes() if node.get("Alive")],
                    resources)


def slots_on(nodes: list[dict[str, float]], resources: dict[str, float]) -> int:
    """How many trials of `resources` nodes with these Ray resources ("CPU", "GPU", custom)
    hold at once; 0 when a trial reserves nothing."""
    wanted = {{"cpu": "CPU", "gpu": "GPU"}.get(name, name): amount
              for name, amount in resources.items() if amount > 0}
    if not wanted:
        return 0
    return sum(min(int(node.get(name, 0.0) / amount + 1e-9) for name, amount in wanted.items())
               for node in nodes)
