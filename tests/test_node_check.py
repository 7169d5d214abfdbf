"""Before any trial starts, every alive node must read the sweep's data: else one line names it.

Two Ray nodes on this machine share one filesystem, so the worker is made unable to read a URI
dataset by giving it a data cache it cannot write (ORCHESTRATE_DATA_CACHE in its raylet's
environment). The launcher test (tests/test_launcher.py) covers a path missing on a real second
host.
"""

import subprocess

import pytest
from ray.cluster_utils import Cluster

from tests.conftest import orchestrate_command, orchestrate_env


def test_a_node_that_cannot_read_the_data_is_named_before_any_trial(tmp_path):
    blocker = tmp_path / "a-file-not-a-directory"
    blocker.write_text("")
    cluster = Cluster(initialize_head=True, head_node_args={
        "num_cpus": 1, "env_vars": {"ORCHESTRATE_DATA_CACHE": str(tmp_path / "head-cache")}})
    worker = cluster.add_node(num_cpus=1, env_vars={"ORCHESTRATE_DATA_CACHE": str(blocker / "cache")})
    cluster.wait_for_nodes()
    try:
        workdir = tmp_path / "work"
        workdir.mkdir()
        data = subprocess.run(orchestrate_command("data", "--task", "retrieval", "--out", str(tmp_path / "bucket")),
                              cwd=workdir, env=orchestrate_env(), capture_output=True, text=True)
        assert data.returncode == 0, data.stderr
        uri = f"file://{tmp_path / 'bucket'}"
        env = {**orchestrate_env(), "ORCHESTRATE_DATA_CACHE": str(tmp_path / "driver-cache")}
        result = subprocess.run(
            orchestrate_command("sweep", "--figures-of-best", "0", "--task", "retrieval", "--data-dir", uri, "--trials", "2",
                                "--max-epochs", "1", "--address", cluster.address, "--name", "nc"),
            cwd=workdir, env=env, capture_output=True, text=True, timeout=600)
    finally:
        cluster.shutdown()
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: node "), result.stderr
    assert worker.node_id[:12] in lines[0] and uri in lines[0]
    assert "ORCHESTRATE_DATA_CACHE" in lines[0]
    assert not list(workdir.glob("ray_results/nc/retrieval/trial_*"))  # no trial started
    # the head read it: its cache holds the copy its trials would have used
    assert [p for p in (tmp_path / "head-cache").iterdir() if p.is_dir()]
