"""A sweep on a real multi-node Ray cluster (a head without CPUs + two workers, as processes on
this machine), so every trial runs on a worker node.

No node declares GPUs: there is no CUDA here, and a trial given a GPU torch cannot use fails
(tests/test_gpu_honesty.py). MLflow is written by the driver, so every trial reaches it. The demo
data is written by the driver and copied under the storage path, where every node reads it.
"""

import json
import subprocess
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

from tests.conftest import REPO, orchestrate, orchestrate_command, orchestrate_env

TRIALS = 4


@pytest.fixture
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    cluster.shutdown()


@pytest.mark.slow
def test_trials_spread_over_worker_nodes_and_all_reach_mlflow(workdir, cluster):
    cluster, workers = cluster
    sweep = orchestrate(
        "sweep", "--figures-of-best", "0", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "2",
        "--address", cluster.address, "--cpus-per-trial", "0.5",
        "--name", "multinode", cwd=workdir,
    )
    assert sweep.returncode == 0, sweep.stdout[-3000:] + sweep.stderr[-3000:]

    worker_ids = {node.node_id for node in workers}
    results = [
        [json.loads(line) for line in path.read_text().splitlines()]
        for path in Path(workdir, "ray_results", "multinode", "retrieval").glob("trial_*/result.json")
    ]
    assert len(results) == TRIALS
    nodes_used = {epoch["node_id"] for trial in results for epoch in trial}
    print("trials per node:", {node[:8]: sum(trial[0]["node_id"] == node for trial in results)
                               for node in nodes_used})
    assert nodes_used <= worker_ids  # trials never land on the head, which has no CPU
    assert len(nodes_used) == 2  # both worker nodes ran trials

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(runs) == TRIALS
    assert {run.data.tags["orchestrate.node_id"] for run in runs} == nodes_used
    assert all(run.data.tags["orchestrate.status"] in ("completed", "pruned") for run in runs)
    assert {run.data.tags["orchestrate.device"] for run in runs} == {"cpu"}
    # the demo data every node read was put under the storage path by the driver
    assert (workdir / "ray_results" / "multinode" / "demo-data" / "retrieval").is_dir()
    assert "copied to" in sweep.stdout


def node_ids_per_trial(results_dir: Path) -> dict[str, list[str]]:
    """Each trial's node id per reported epoch, from Tune's own result files."""
    per_trial = {}
    for path in results_dir.glob("trial_*/result.json"):
        lines = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        per_trial[path.parent.name] = [line["node_id"] for line in lines]
    return per_trial


@pytest.mark.slow
def test_worker_node_killed_mid_sweep_its_trials_finish_on_the_remaining_node(workdir, cluster):
    cluster, workers = cluster
    doomed, survivor = workers
    # no ASHA pruning here: every trial must finish, those of the killed node included
    space = workdir / "no_pruning.yaml"
    space.write_text((REPO / "search_spaces" / "retrieval.yaml").read_text().replace(
        "grace_period: 1", "grace_period: 4"))
    sweep = subprocess.Popen(
        orchestrate_command(
            "sweep", "--figures-of-best", "0", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "4",
            "--space", str(space),
            "--address", cluster.address, "--cpus-per-trial", "0.5",
            "--name", "nodeloss"),
        cwd=workdir, env=orchestrate_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    results_dir = workdir / "ray_results" / "nodeloss" / "retrieval"
    deadline = time.monotonic() + 300
    while not any(doomed.node_id in nodes for nodes in node_ids_per_trial(results_dir).values()):
        assert time.monotonic() < deadline and sweep.poll() is None, "no trial ever ran on the doomed node"
        time.sleep(0.5)
    cluster.remove_node(doomed)  # the node's raylet and its trial processes die
    output, _ = sweep.communicate(timeout=600)
    assert sweep.returncode == 0, output[-3000:]

    per_trial = node_ids_per_trial(results_dir)
    moved = [nodes for nodes in per_trial.values() if doomed.node_id in nodes and survivor.node_id in nodes]
    print("trials moved to the surviving node:", len(moved))
    assert moved  # a trial that was on the killed node continued on the other one

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(runs) == TRIALS
    statuses = {run.data.tags["orchestrate.trial_id"]: (run.data.tags["orchestrate.status"],
                run.data.tags["orchestrate.reason"]) for run in runs}
    # the node's loss costs no trial: each ran to its end (a health guard may still stop one)
    assert all(status in ("completed", "stopped") for status, _ in statuses.values()), statuses
