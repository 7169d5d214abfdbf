"""A sweep whose driver is killed with SIGKILL mid-sweep, then finished with `--resume`.

Checked against Tune's own record of the experiment: every trial has exactly one MLflow run,
trials that had finished are not rerun, and no run is left RUNNING.
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

TRIALS = 6
SWEEP = ["sweep", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "4",
         "--name", "resumable"]


def trial_runs(client: MlflowClient):
    experiment = client.get_experiment_by_name("retrieval")
    if experiment is None:
        return []
    return client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


def finished(runs):
    return [run for run in runs if run.data.tags.get("orchestrate.status") not in (None, "running")]


@pytest.mark.slow
def test_driver_killed_mid_sweep_is_resumed_without_lost_or_duplicated_trials(workdir):
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    driver = subprocess.Popen(orchestrate_command(*SWEEP), cwd=workdir, env=orchestrate_env(),
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:  # kill once some trials finished and others run
        time.sleep(1)
        if (workdir / "mlflow.db").exists():
            runs = trial_runs(client)
            if len(finished(runs)) >= 2 and len(runs) > len(finished(runs)):
                break
    else:
        pytest.fail("the sweep never reached a state with finished and running trials")
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    time.sleep(3)  # let the killed driver's Ray processes go
    before = {run.data.tags["orchestrate.trial_id"]: run for run in finished(trial_runs(client))}
    print(f"killed with {len(before)} trials finished, {len(trial_runs(client)) - len(before)} running")

    resumed = orchestrate(*SWEEP, "--resume", cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    tune_trials = {trial.trial_id for trial in ExperimentAnalysis(
        str(workdir / "ray_results" / "resumable" / "retrieval")).trials}
    runs = trial_runs(client)
    by_trial: dict[str, list] = {}
    for run in runs:
        by_trial.setdefault(run.data.tags["orchestrate.trial_id"], []).append(run)
    assert all(len(group) == 1 for group in by_trial.values())  # no duplicated trial
    assert tune_trials <= set(by_trial)  # no trial missing from MLflow
    assert len(tune_trials) == TRIALS
    assert all(run.info.status != "RUNNING" for run in runs)
    for trial_id in set(by_trial) - tune_trials:  # runs of trials Tune never recorded
        run = by_trial[trial_id][0]
        assert run.data.tags["orchestrate.status"] == "failed" and "killed" in run.data.tags["orchestrate.reason"]
    for trial_id, earlier in before.items():  # finished trials were not rerun
        later = by_trial[trial_id][0]
        assert later.info.end_time == earlier.info.end_time
        assert later.data.tags["orchestrate.status"] == earlier.data.tags["orchestrate.status"]
    for run in runs:  # each epoch logged once, also for trials resumed from a checkpoint
        steps = [m.step for m in client.get_metric_history(run.info.run_id, "val/mean_r1")]
        assert len(steps) == len(set(steps))
    assert "Sweep summary" in resumed.stdout
