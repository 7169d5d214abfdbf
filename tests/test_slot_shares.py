"""Fair shares of a cluster's slots among tasks swept side by side (orchestrator/slot_shares.py):
the share is ceil(slots / tasks still sampling), a task's searcher holds no more trials in
flight than its share, shares grow as tasks finish sampling, and the limiter survives Tune's
deep copy of its state (it holds the task's name, not the shares)."""

from __future__ import annotations

import copy

from ray.tune.search import Searcher

from orchestrator.slot_shares import (
    SharedSlotLimiter, SlotShares, share_slots, slots_on, unshare_slots)


class CountingSearcher(Searcher):
    """Suggests {"n": k} for the k-th trial, `trials` in all."""

    def __init__(self, trials: int):
        super().__init__(metric="m", mode="max")
        self.trials, self.count = trials, 0

    def suggest(self, trial_id):
        if self.count >= self.trials:
            return Searcher.FINISHED
        self.count += 1
        return {"n": self.count}

    def on_trial_complete(self, trial_id, result=None, error=False):
        pass


def test_a_task_keeps_to_its_share_and_the_last_one_sampling_widens_to_every_slot():
    shares = SlotShares(["a", "b", "c"], slots=4)
    share_slots(shares, ["a", "b", "c"])
    try:
        a = SharedSlotLimiter(CountingSearcher(3), "a", trials=3)
        b = SharedSlotLimiter(CountingSearcher(8), "b", trials=8)
        assert shares.share("b") == 2  # ceil(4 / 3)
        assert a.suggest("a1") and a.suggest("a2")
        assert a.suggest("a3") is None  # a third in flight is over its share
        a.on_trial_complete("a1", {"m": 1.0})
        assert a.suggest("a3")  # a's last trial: a no longer samples
        assert shares.share("b") == 2  # ceil(4 / 2): b and c
        shares.all_sampled("c")
        assert shares.share("b") == 4
        assert [b.suggest(f"b{i}") for i in range(5)][:4] == [{"n": i} for i in range(1, 5)]
        assert b.suggest("b9") is None
    finally:
        unshare_slots(["a", "b", "c"])


def test_the_user_s_concurrency_caps_the_share_and_no_shares_means_only_that_cap():
    shares = SlotShares(["a"], slots=4)
    share_slots(shares, ["a"])
    try:
        limited = SharedSlotLimiter(CountingSearcher(8), "a", trials=8, max_concurrent=1)
        assert limited.suggest("t1") and limited.suggest("t2") is None
    finally:
        unshare_slots(["a"])
    alone = SharedSlotLimiter(CountingSearcher(8), "a", trials=8)  # e.g. resumed one at a time
    assert all(alone.suggest(f"t{i}") for i in range(6))


def test_the_limiter_s_state_deep_copies_as_tune_saves_it():
    shares = SlotShares(["a"], slots=2)
    share_slots(shares, ["a"])
    try:
        limiter = SharedSlotLimiter(CountingSearcher(8), "a", trials=8)
        limiter.suggest("t1")
        state = copy.deepcopy(limiter.get_state())
        restored = SharedSlotLimiter(CountingSearcher(8), "a", trials=8)
        restored.set_state(state)
        assert restored.sampled == 1 and restored.live_trials == {"t1"}
        assert restored.suggest("t2") and restored.suggest("t3") is None  # share 2, t1 in flight
    finally:
        unshare_slots(["a"])


def test_slots_are_the_trials_each_alive_node_holds_by_its_scarcest_resource():
    nodes = [{"CPU": 2.0, "slot": 2.0}, {"CPU": 4.0, "slot": 2.0}, {"CPU": 0.0}]
    assert slots_on(nodes, {"cpu": 1, "gpu": 0, "slot": 1}) == 4
    assert slots_on(nodes, {"cpu": 1.5, "gpu": 0}) == 3
    assert slots_on([{"CPU": 16.0, "GPU": 1.0}], {"cpu": 1, "gpu": 0.5}) == 2
    assert slots_on(nodes, {"cpu": 0, "gpu": 0}) == 0


def test_the_newest_pending_trial_starts_first_then_paused_ones():
    from ray.tune.experiment import Trial

    from orchestrator.slot_shares import NewestFirstASHA

    class Trials:
        def __init__(self, *statuses):
            self.trials = [type("T", (), {"status": status, "n": n})() for n, status in enumerate(statuses)]

        def get_trials(self):
            return self.trials

    scheduler = NewestFirstASHA(time_attr="training_iteration", max_t=4)
    assert scheduler.choose_trial_to_run(Trials(Trial.RUNNING, Trial.PENDING, Trial.PENDING)).n == 2
    assert scheduler.choose_trial_to_run(Trials(Trial.PAUSED, Trial.RUNNING, Trial.PAUSED)).n == 0
    assert scheduler.choose_trial_to_run(Trials(Trial.RUNNING, Trial.TERMINATED)) is None
