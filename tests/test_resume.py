"""A sweep whose driver is killed with SIGKILL mid-sweep, twice, then finished with `--resume`.

Checked against Tune's own record of the experiment and its checkpoints: every trial has
exactly one MLflow run and no run is left RUNNING, trials that had finished are not rerun, no
metric has two values at one step, every epoch in MLflow is the one in the trial's surviving
checkpoint (and its exported weights' history), and a resumed trial reports what the same
trial trained without a stop reports.
"""

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray.tune import ExperimentAnalysis

from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import (
    assert_matches_uninterrupted, assert_one_value_per_step, assert_runs_mirror_checkpoints)

TRIALS = 4
SWEEP = ["sweep", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "3",
         "--name", "resumable"]


def trial_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("retrieval")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


def finished(runs):
    return [run for run in runs if run.data.tags.get("orchestrate.status") not in (None, "running")]


def epochs_logged(client: MlflowClient) -> int:
    return sum(len(client.get_metric_history(run.info.run_id, "time/train_seconds"))
               for run in trial_runs(client))


def kill_driver_when(workdir: Path, client: MlflowClient, ready, *args: str) -> None:
    """Start the sweep's driver and SIGKILL it once `ready(runs)` holds (its Ray goes with it)."""
    driver = subprocess.Popen(orchestrate_command(*SWEEP, *args), cwd=workdir, env=orchestrate_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        time.sleep(1)
        if (workdir / "mlflow.db").exists() and ready(trial_runs(client)):
            break
        assert driver.poll() is None, "the sweep ended before it could be killed"
    else:
        pytest.fail("the sweep never reached the state to kill it in")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # let the killed driver's Ray processes go


@pytest.mark.slow
def test_driver_killed_twice_mid_sweep_is_resumed_to_what_an_unbroken_sweep_records(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    # first kill: some trials finished, others running
    kill_driver_when(workdir, client, lambda runs: len(finished(runs)) >= 2 and len(runs) > len(finished(runs)))
    before = {run.data.tags["orchestrate.trial_id"]: run for run in finished(trial_runs(client))}
    logged = epochs_logged(client)
    print(f"killed with {len(before)} trials finished, {len(trial_runs(client)) - len(before)} running")
    # second kill: the resumed driver logged a new epoch
    kill_driver_when(workdir, client, lambda runs: epochs_logged(client) > logged, "--resume")

    resumed = orchestrate(*SWEEP, "--resume", cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert "Sweep summary" in resumed.stdout and "Traceback" not in resumed.stdout + resumed.stderr

    experiment_dir = workdir / "ray_results" / "resumable" / "retrieval"
    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(str(experiment_dir)).trials}
    runs = assert_runs_mirror_checkpoints(client, "retrieval", experiment_dir, "val/mean_r1")
    assert {run.data.tags["orchestrate.trial_id"] for run in runs} == tune_trials  # runs = trials
    assert len(tune_trials) == TRIALS
    assert_one_value_per_step(client, "retrieval")
    by_trial = {run.data.tags["orchestrate.trial_id"]: run for run in runs}
    for trial_id, earlier in before.items():  # finished trials were not rerun
        later = by_trial[trial_id]
        assert later.info.end_time == earlier.info.end_time
        assert later.data.tags["orchestrate.status"] == earlier.data.tags["orchestrate.status"]
    replaced = [run for run in runs if "orchestrate.replaces" in run.data.tags]
    print(f"{len(replaced)} runs replaced after re-run epochs")

    # a trial that was resumed from a checkpoint and trained on reports what it would have
    resumed_trials = [run for run in runs if int(run.data.tags["orchestrate.attempts"]) > 1
                      and run.data.metrics.get("best/epoch", 0) >= 1]
    assert resumed_trials
    longest = max(resumed_trials, key=lambda run: len(
        client.get_metric_history(run.info.run_id, "val/mean_r1")))
    assert assert_matches_uninterrupted(client, longest) >= 1
