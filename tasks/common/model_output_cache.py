"""Values computed by running the model (a split's embeddings, predictions), kept until it trains.

Each epoch the trial loop calls `evaluate` on val, then `probe` (and at the end `figures`) on
the same model. They need the same pass over val, so a task keeps what evaluate computed and the
probe reads it instead of running the model again. A kept value is stale as soon as the model
takes another training step; the task's `training_step` says so with `note_training_step()`,
which drops everything kept (so stale tensors do not stay in memory through the next epoch).
Weights can also change without a training step (a checkpoint loaded), so `evaluate` stores a
fresh value with `put` rather than reading one.
"""

from __future__ import annotations

from typing import Any, Callable, Hashable, TypeVar

Value = TypeVar("Value")


class ModelOutputCache:
    """Values keyed by name (e.g. "val" or "val_prediction"), valid until the next training step."""

    def __init__(self) -> None:
        self._values: dict[Hashable, Any] = {}

    def note_training_step(self) -> None:
        """The model has trained: every kept value is stale, and is dropped."""
        self._values.clear()

    def put(self, key: Hashable, value: Value) -> Value:
        """Keep `value` (computed from the model as it is now) under `key`; returns `value`."""
        self._values[key] = value
        return value

    def get_or_compute(self, key: Hashable, compute: Callable[[], Value]) -> Value:
        """The value kept under `key` since the last training step, else `compute()` (kept)."""
        if key not in self._values:
            self._values[key] = compute()
        return self._values[key]
