"""Faults injected into real sweeps: crashing trials are retried from their checkpoint, and
trials that keep crashing end as `failed` in MLflow while the sweep goes on; a trial whose Ray
worker is killed mid-epoch is retried, says so in one line, and trains on as if never stopped.
Every failed attempt is in its run: a tag with its error's last line and errors/attempt-<n>.txt."""

import os
import re
import signal
import subprocess
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import (
    assert_matches_uninterrupted, assert_one_value_per_step, assert_runs_mirror_checkpoints)
from tests.test_interrupt import process_tree

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
        "sweep", "--figures-of-best", "0", "--task", "tests.faults.crashing:always_crashes",
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
        # both attempts and how each ended
        assert run.data.tags["orchestrate.attempts"] == "2"
        for attempt in (1, 2):
            line = run.data.tags[f"orchestrate.failure.attempt-{attempt}"]
            assert line.endswith(f"RuntimeError: injected crash {attempt} at evaluation 2")
            text = Path(client.download_artifacts(run.info.run_id, f"errors/attempt-{attempt}.txt")).read_text()
            assert f"injected crash {attempt} " in text and 'crashing.py", line' in text  # + stack
    assert "Traceback" not in sweep.stdout + sweep.stderr  # tracebacks are in the files above

    retried = trial_runs(client, "flaky_once")
    assert len(retried) == 2  # one MLflow run per trial, reused by its retry
    for run in retried:
        assert run.data.tags["orchestrate.status"] == "completed", run.data.tags
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/mean_r1")]
        assert sorted(steps) == [1, 2, 3]  # resumed after epoch 1: no epoch lost or repeated
    crash_counts = [int(p.read_text()) for p in (workdir / "markers" / "flaky_once").iterdir()]
    assert crash_counts == [1, 1]  # each trial really crashed once and was retried
    assert "failed" in sweep.stdout and "injected crash" in sweep.stdout


def trial_worker(sweep_pid: int) -> int:
    """The pid of the Ray worker running a trial of the sweep (`ray::ImplicitFunc.train`)."""
    for pid in process_tree(sweep_pid):
        try:
            command = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
        except OSError:
            continue
        if command.startswith("ray::ImplicitFunc"):
            return pid
    pytest.fail("no trial worker among the sweep's processes")


@pytest.mark.slow
def test_a_trial_whose_worker_is_killed_is_retried_in_one_line_and_trains_on_as_if_never_stopped(workdir):
    sweep = subprocess.Popen(
        orchestrate_command("sweep", "--figures-of-best", "0", "--task", "retrieval", "--trials", "1", "--max-epochs", "3",
                            "--name", "killed"),
        cwd=workdir, env=orchestrate_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    output = []
    for line in sweep.stdout:  # kill the worker in the middle of epoch 2
        output.append(line)
        if "epoch 1/3" in line:
            os.kill(trial_worker(sweep.pid), signal.SIGKILL)
            break
    output += sweep.stdout.readlines()
    text = "".join(output)
    assert sweep.wait(timeout=600) == 0, text[-3000:]

    retries = [line for line in text.splitlines() if "retrying it from its last checkpoint" in line]
    assert len(retries) == 1, text[-3000:]
    assert re.match(r"\[retrieval\] trial \w+ failed on node [\d.]+: The actor is dead because its "
                    r"worker process has died\.", retries[0]), retries[0]
    assert "Traceback" not in text and "ActorDiedError" not in text and "(raylet)" not in text

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (run,) = assert_runs_mirror_checkpoints(client, "retrieval", workdir / "ray_results" / "killed" / "retrieval",
                                            "val/mean_r1")
    assert_one_value_per_step(client, "retrieval")
    tags = run.data.tags
    assert tags["orchestrate.status"] == "completed"
    assert tags["orchestrate.attempts"] == "2" and tags["orchestrate.retries"] == "1"
    assert "worker process has died" in tags["orchestrate.failure.attempt-1"]
    error = Path(client.download_artifacts(run.info.run_id, "errors/attempt-1.txt")).read_text()
    assert "The actor died unexpectedly" in error
    # the retried trial reports the epochs an unbroken one does
    assert assert_matches_uninterrupted(client, run) == 3
