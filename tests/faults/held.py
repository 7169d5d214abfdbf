"""Fault injection: the real retrieval task, held at one evaluation until a test releases it.

An attempt's `hold_at_evaluation`-th evaluation waits until `release_dir` holds a file named
after its trial id, or one named `all`, so a test can act at a known point of a trial (read
Ray Tune's saved state, kill the sweep's driver) while the sweep's other trials stay held.
"""

from __future__ import annotations

import time
from pathlib import Path

from pydantic import Field
from ray import tune

from tasks.retrieval.config import RetrievalConfig
from tasks.retrieval.task import RetrievalTask

HOLD_SECONDS = 600  # the longest a test may take to release a held trial


class HeldConfig(RetrievalConfig):
    release_dir: str = Field(..., description="where the files that release held trials appear")
    hold_at_evaluation: int = Field(3, ge=1, description="which evaluation of an attempt waits")


class HeldRetrievalTask(RetrievalTask):
    config_model = HeldConfig

    def __init__(self, name: str):
        self.name = name

    def evaluate(self, setup, split):
        config = setup.extras["config"]
        setup.extras["evaluations"] = setup.extras.get("evaluations", 0) + 1
        trial_id = tune.get_context().get_trial_id()  # None in the sweep's preflight: no hold
        if trial_id and setup.extras["evaluations"] == config.hold_at_evaluation:
            releases = [Path(config.release_dir) / name for name in (trial_id, "all")]
            deadline = time.monotonic() + HOLD_SECONDS
            while not any(path.exists() for path in releases) and time.monotonic() < deadline:
                time.sleep(0.2)
        return super().evaluate(setup, split)


held_at_last_epoch = HeldRetrievalTask("held_at_last_epoch")
