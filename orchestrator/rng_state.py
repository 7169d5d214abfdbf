"""The global random number generators a trial draws from, as a value a checkpoint can hold.

torch's CPU generator and each CUDA device's (dropout, augmentation, anything a task draws
without its own generator), numpy's and Python's. A resumed or retried trial restores them
from its checkpoint and draws exactly what it would have drawn had it never stopped. The
value holds only tensors, lists and numbers, so it loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import torch


def capture() -> dict[str, Any]:
    """The current state of every global generator."""
    kind, keys, position, has_gauss, cached_gaussian = np.random.get_state()
    version, python_state, gauss_next = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"kind": kind, "keys": torch.from_numpy(keys.astype(np.int64)),
                  "position": int(position), "has_gauss": int(has_gauss),
                  "cached_gaussian": float(cached_gaussian)},
        "python": {"version": version, "state": list(python_state), "gauss_next": gauss_next},
    }


def restore(state: dict[str, Any]) -> None:
    """Put every global generator back to `state` (from `capture`).

    CUDA generators are restored for the devices both the saved and this process have: a trial
    is given the same number of GPUs on every attempt.
    """
    torch.set_rng_state(state["torch"])
    if torch.cuda.is_available():
        for device, device_state in enumerate(state["cuda"][: torch.cuda.device_count()]):
            torch.cuda.set_rng_state(device_state, device)
    saved = state["numpy"]
    np.random.set_state((saved["kind"], saved["keys"].numpy().astype(np.uint32), saved["position"],
                         saved["has_gauss"], saved["cached_gaussian"]))
    saved = state["python"]
    random.setstate((saved["version"], tuple(saved["state"]), saved["gauss_next"]))
