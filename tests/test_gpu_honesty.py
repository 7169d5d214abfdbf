"""A trial given a GPU that torch cannot use fails at once with one line; it never trains on CPU.

This machine has no CUDA, so a Ray node that declares a GPU is exactly the broken case: Ray hands
the GPU out, torch cannot use it.
"""

import subprocess

import pytest
import ray
from mlflow.tracking import MlflowClient
from ray.cluster_utils import Cluster

from orchestrator.devices import GpuUnusable
from orchestrator.health import HealthConfig
from orchestrator.trainable import TrialPlan, run_trial
from orchestrator.training import training_device
from tests.conftest import orchestrate_command, orchestrate_env


@pytest.fixture(scope="module")
def fake_gpu_cluster():
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    gpu_node = cluster.add_node(num_cpus=1, num_gpus=1)
    cluster.wait_for_nodes()
    yield cluster, gpu_node
    cluster.shutdown()


def test_sweep_asking_for_a_gpu_that_cuda_cannot_use_ends_in_one_line(fake_gpu_cluster, tmp_path):
    cluster, gpu_node = fake_gpu_cluster
    result = subprocess.run(
        orchestrate_command("sweep", "--figures-of-best", "0", "--task", "retrieval", "--trials", "2", "--max-epochs", "1",
                            "--address", cluster.address, "--gpus-per-trial", "1", "--name", "gpu"),
        cwd=tmp_path, env=orchestrate_env(), capture_output=True, text=True, timeout=600)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    line = lines[0]
    assert gpu_node.node_id[:12] in line  # the node
    assert "torch cannot use CUDA" in line and "torch sees 0 CUDA device(s)" in line  # what torch sees
    assert "NVIDIA driver" in line and "built " in line  # the driver and wheel versions
    assert "Traceback" not in result.stdout + result.stderr
    # no trial trained anywhere, on CPU or otherwise
    assert not list((tmp_path / "ray_results").glob("gpu/retrieval/trial_*"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    assert experiment is None or not client.search_runs(
        [experiment.experiment_id], "tags.`orchestrate.role` = 'trial'")


def test_the_trial_loop_refuses_a_gpu_it_cannot_use(fake_gpu_cluster, tmp_path):
    """A GPU node that joins after the pre-sweep check (an autoscaled worker) is caught in the trial."""
    cluster, gpu_node = fake_gpu_cluster
    from tasks.retrieval import task

    task.make_demo_data(tmp_path / "data", seed=0)
    plan = TrialPlan(task_reference="tasks.retrieval:task", data_dir=str(tmp_path / "data"),
                     max_epochs=1, metric=task.metric, mode=task.mode, health=HealthConfig())
    ray.init(address=cluster.address)
    try:
        trial = ray.remote(num_gpus=1, num_cpus=0, max_retries=0)(run_trial)
        with pytest.raises(GpuUnusable) as raised:
            ray.get(trial.remote({}, plan))
        assert "torch cannot use CUDA" in str(raised.value)
        assert str(raised.value).splitlines()[-1].startswith("orchestrator.devices.GpuUnusable: node ")
        # without a GPU from Ray the same loop trains on the CPU as asked
        device = ray.get(ray.remote(num_cpus=0)(lambda: str(training_device(len(ray.get_gpu_ids())))).remote())
        assert device == "cpu"
    finally:
        ray.shutdown()
