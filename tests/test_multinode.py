"""A sweep on a real multi-node Ray cluster (head + GPU workers as processes on this machine).

The worker nodes declare logical GPUs; there is no CUDA here, so trials that Ray gives a GPU
fraction must fall back to the CPU. MLflow is written by the driver, so every trial reaches it.
"""

import json
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

from tests.conftest import orchestrate

TRIALS = 4


@pytest.fixture
def cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [cluster.add_node(num_cpus=1, num_gpus=1) for _ in range(2)]
    cluster.wait_for_nodes()
    yield cluster, workers
    cluster.shutdown()


@pytest.mark.slow
def test_fractional_gpu_trials_spread_over_worker_nodes_and_all_reach_mlflow(workdir, cluster):
    cluster, workers = cluster
    sweep = orchestrate(
        "sweep", "--task", "retrieval", "--trials", str(TRIALS), "--max-epochs", "2",
        "--address", cluster.address, "--gpus-per-trial", "0.5", "--cpus-per-trial", "0.5",
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
    assert nodes_used <= worker_ids  # GPU trials never land on the GPU-less head
    assert len(nodes_used) == 2  # both worker nodes ran trials

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    runs = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")
    assert len(runs) == TRIALS
    assert {run.data.tags["orchestrate.node_id"] for run in runs} == nodes_used
    assert all(run.data.tags["orchestrate.status"] in ("completed", "pruned") for run in runs)
