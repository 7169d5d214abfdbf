"""Faults injected into real sweeps: crashing trials are retried from their checkpoint, and
trials that keep crashing end as `failed` in MLflow while the sweep goes on."""

from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate

SPACE = """
metric: val/mean_r1
mode: max
budget: {{max_epochs: 3, grace_period: 3, reduction_factor: 2}}
fixed: {{crash_marker_dir: "{markers}", crash_attempts: {attempts}, crash_at_evaluation: 2}}
parameters:
  learning_rate: {{type: float, low: 1.0e-3, high: 3.0e-3, log: true}}
"""


def write_space(workdir: Path, task_name: str, attempts: int) -> None:
    spaces = workdir / "search_spaces"
    spaces.mkdir(exist_ok=True)
    (spaces / f"{task_name}.yaml").write_text(
        SPACE.format(markers=workdir / "markers" / task_name, attempts=attempts))


def trial_runs(client: MlflowClient, task_name: str):
    experiment = client.get_experiment_by_name(task_name)
    return client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


@pytest.mark.slow
def test_crashing_trials_are_retried_from_checkpoint_or_fail_after_the_limit(workdir):
    write_space(workdir, "always_crashes", attempts=99)
    write_space(workdir, "flaky_once", attempts=1)
    sweep = orchestrate(
        "sweep", "--task", "tests.faults.crashing:always_crashes",
        "--task", "tests.faults.crashing:flaky_once", "--trials", "2", "--max-failures", "1",
        "--name", "faults", cwd=workdir, plugins=True,
    )
    # the sweep went on to flaky_once after every always_crashes trial failed, then said so
    assert sweep.returncode == 1, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    assert "error: every trial of always_crashes failed" in sweep.stderr
    print(sweep.stdout[-3000:])
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")

    failed = trial_runs(client, "always_crashes")
    assert len(failed) == 2
    for run in failed:
        assert run.data.tags["orchestrate.status"] == "failed"
        assert run.info.status == "FAILED"
        # the error's last line, from the second (last allowed) attempt
        assert run.data.tags["orchestrate.reason"] == "RuntimeError: injected crash 2 at evaluation 2"

    retried = trial_runs(client, "flaky_once")
    assert len(retried) == 2  # one MLflow run per trial, reused by its retry
    for run in retried:
        assert run.data.tags["orchestrate.status"] == "completed", run.data.tags
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/mean_r1")]
        assert sorted(steps) == [1, 2, 3]  # resumed after epoch 1: no epoch lost or repeated
    crash_counts = [int(p.read_text()) for p in (workdir / "markers" / "flaky_once").iterdir()]
    assert crash_counts == [1, 1]  # each trial really crashed once and was retried
    assert "failed" in sweep.stdout and "injected crash" in sweep.stdout
