"""ModelOutputCache: a value is computed once per training step and recomputed after one."""

from __future__ import annotations

import pytest

from tasks.common.model_output_cache import ModelOutputCache


class CountingCompute:
    """A compute function that returns a new object per call and counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return object()


def never_called() -> object:
    pytest.fail("the cache computed a value it should have kept")


def test_a_value_is_computed_once_and_reused_until_the_model_trains():
    cache, compute = ModelOutputCache(), CountingCompute()
    first = cache.get_or_compute("val", compute)
    assert cache.get_or_compute("val", compute) is first
    assert compute.calls == 1


def test_a_value_is_recomputed_after_a_training_step():
    cache, compute = ModelOutputCache(), CountingCompute()
    first = cache.get_or_compute("val", compute)
    cache.note_training_step()
    second = cache.get_or_compute("val", compute)
    assert second is not first and compute.calls == 2
    assert cache.get_or_compute("val", never_called) is second


def test_a_put_value_is_what_later_reads_get_until_the_model_trains():
    cache = ModelOutputCache()
    fresh = object()
    assert cache.put("val", fresh) is fresh
    assert cache.get_or_compute("val", never_called) is fresh
    cache.note_training_step()
    assert cache.get_or_compute("val", CountingCompute()) is not fresh


def test_put_replaces_a_value_kept_in_the_same_step():
    # evaluate stores a fresh value even when one is kept: weights may be loaded without training
    cache = ModelOutputCache()
    old = cache.get_or_compute("val", CountingCompute())
    new = cache.put("val", object())
    assert new is not old and cache.get_or_compute("val", never_called) is new


def test_keys_are_independent():
    cache, compute_val, compute_test = ModelOutputCache(), CountingCompute(), CountingCompute()
    val = cache.get_or_compute("val", compute_val)
    test = cache.get_or_compute("test", compute_test)
    assert val is not test
    cache.put("test", "replaced")
    assert cache.get_or_compute("val", never_called) is val
    assert (compute_val.calls, compute_test.calls) == (1, 1)


def test_a_training_step_drops_every_key():
    cache = ModelOutputCache()
    cache.put("val", 1)
    cache.put("test", 2)
    cache.note_training_step()
    assert cache.get_or_compute("val", lambda: 3) == 3
    assert cache.get_or_compute("test", lambda: 4) == 4


def test_a_compute_that_raises_keeps_nothing():
    cache = ModelOutputCache()

    def fails() -> object:
        raise RuntimeError("out of memory")

    with pytest.raises(RuntimeError):
        cache.get_or_compute("val", fails)
    assert cache.get_or_compute("val", lambda: "computed") == "computed"
