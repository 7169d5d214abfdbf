"""Fault injection: the real retrieval task, made to raise during some trial attempts.

A trial raises at its `crash_at_evaluation`-th evaluation of an attempt, for its first
`crash_attempts` attempts; attempts are counted in files under `crash_marker_dir`, one per
trial, so the count survives the process that Ray restarts the trial in.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from ray import tune

from tasks.retrieval.config import RetrievalConfig
from tasks.retrieval.task import RetrievalTask


class CrashingConfig(RetrievalConfig):
    crash_marker_dir: str = Field(..., description="where crash counts per trial are kept")
    crash_attempts: int = Field(1, ge=0, description="how many attempts of each trial crash")
    crash_at_evaluation: int = Field(2, ge=1, description="which evaluation of an attempt raises")


class CrashingRetrievalTask(RetrievalTask):
    config_model = CrashingConfig

    def __init__(self, name: str):
        self.name = name

    def evaluate(self, setup, split):
        config = setup.extras["config"]
        setup.extras["evaluations"] = setup.extras.get("evaluations", 0) + 1
        if setup.extras["evaluations"] == config.crash_at_evaluation:
            marker = Path(config.crash_marker_dir) / tune.get_context().get_trial_id()
            crashes = int(marker.read_text()) if marker.exists() else 0
            if crashes < config.crash_attempts:
                marker.parent.mkdir(parents=True, exist_ok=True)
                marker.write_text(str(crashes + 1))
                raise RuntimeError(f"injected crash {crashes + 1} at evaluation {config.crash_at_evaluation}")
        return super().evaluate(setup, split)


flaky_once = CrashingRetrievalTask("flaky_once")
always_crashes = CrashingRetrievalTask("always_crashes")
