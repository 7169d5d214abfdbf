"""A trial that failed and was retried never looks clean: a line in the log, tags in MLflow.

(On a cluster the retry may land on another node, so the final status alone would hide that a
node could not run it.)
"""

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate
from tests.test_faults import trial_runs, write_space


@pytest.mark.slow
def test_a_retried_trial_is_reported_in_the_log_and_in_mlflow(workdir):
    write_space(workdir, "flaky_once", attempts=1)
    sweep = orchestrate("sweep", "--figures-of-best", "0", "--task", "tests.faults.crashing:flaky_once", "--trials", "1",
                        "--max-failures", "1", "--name", "retried", cwd=workdir, plugins=True)
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (run,) = trial_runs(client, "flaky_once")
    trial_id = run.data.tags["orchestrate.trial_id"]
    retried = [line for line in sweep.stdout.splitlines()
               if line.startswith(f"[flaky_once] trial {trial_id} failed on node ")]
    assert len(retried) == 1, sweep.stdout[-3000:]
    assert retried[0].endswith(
        "RuntimeError: injected crash 1 at evaluation 2; retrying it from its last checkpoint")
    assert run.data.tags["orchestrate.status"] == "completed"  # the retry finished it ...
    assert run.data.tags["orchestrate.retries"] == "1"  # ... and the run says it was retried
    assert "injected crash 1" in run.data.tags["orchestrate.last_failure"]
    assert run.data.tags["orchestrate.last_failure"].startswith("failed on node ")
