"""The MLflow server dies mid-sweep: the sweep goes on, Tune keeps every result, and the
terminal says which logs are missing."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from tests.conftest import orchestrate

TRIALS = 4


def stop(server: subprocess.Popen) -> None:
    """Kill the server and its worker processes (they share its process group)."""
    if server.poll() is None:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()


def server_is_up(uri: str) -> bool:
    try:
        return requests.get(f"{uri}/health", timeout=5).ok
    except requests.RequestException:
        return False


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.mark.slow
def test_tracking_server_lost_mid_sweep_does_not_lose_tune_results(workdir):
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--backend-store-uri", f"sqlite:///{workdir / 'server.db'}", "--workers", "1"],
        cwd=workdir, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while not server_is_up(uri):
            assert time.monotonic() < deadline, "the MLflow server did not start"
            time.sleep(0.5)
        sweep = subprocess.Popen(
            [str(Path(sys.executable).parent / "orchestrate"), "sweep", "--figures-of-best", "0", "--task", "retrieval",
             "--trials", str(TRIALS), "--max-epochs", "3", "--tracking-uri", uri, "--name", "outage"],
            cwd=workdir, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            env={**os.environ, "COLUMNS": "200"})
        # wait for the first reported epoch, then take the tracking server away
        output = []
        for line in sweep.stdout:
            output.append(line)
            if "epoch 1/3" in line:
                stop(server)
                break
        output += sweep.stdout.readlines()
        assert sweep.wait(timeout=600) == 0, "".join(output)[-3000:]
    finally:
        stop(server)
    text = "".join(output)
    assert "MLflow calls failed; these logs are missing" in text
    assert "Sweep summary" in text
    results = list((workdir / "ray_results" / "outage" / "retrieval").glob("trial_*/result.json"))
    assert len(results) == TRIALS and all(path.read_text().strip() for path in results)
