"""Ctrl-C during `orchestrate sweep`, sent as a terminal sends it (SIGINT to the whole process
group), and what a local sweep exposes to the network while it runs.

One Ctrl-C: the sweep stops, exit code 130, the summary says it was interrupted and prints the
command that continues it; MLflow shows the sweep run KILLED and tagged `interrupted`, the trials
in flight `interrupted`; the printed command finishes the sweep, and what MLflow then holds is
what an unbroken sweep holds. A second Ctrl-C quits at once (130). While the sweep runs, every
port its processes (driver, GCS, raylet, workers) listen on is on 127.0.0.1.
"""

from __future__ import annotations

import ipaddress
import os
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient

from tests.conftest import orchestrate, orchestrate_command, orchestrate_env
from tests.mlflow_checks import (
    assert_matches_uninterrupted, assert_one_value_per_step, assert_runs_mirror_checkpoints, runs_of)

LISTEN = "0A"  # the TCP state LISTEN in /proc/net/tcp


def start_sweep(workdir: Path, *args: str) -> subprocess.Popen:
    """`orchestrate sweep` in its own process group, as a shell runs a foreground command."""
    return subprocess.Popen(orchestrate_command("sweep", *args), cwd=workdir, env=orchestrate_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def read_until(process: subprocess.Popen, pattern: str, output: list[str]) -> None:
    for line in process.stdout:
        output.append(line)
        if re.search(pattern, line):
            return
    pytest.fail(f"the sweep ended before printing {pattern!r}:\n" + "".join(output)[-3000:])


def process_tree(root: int) -> set[int]:
    """The process and all its descendants, from /proc."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [root]
    while todo:
        pid = todo.pop()
        tree.add(pid)
        todo += children.get(pid, [])
    return tree


def listening_addresses(pids: set[int]) -> list[tuple[str, int]]:
    """(address, port) of every TCP socket the processes listen on (/proc/net/tcp, tcp6)."""
    inodes = set()
    for pid in pids:
        try:
            links = [os.readlink(fd) for fd in Path(f"/proc/{pid}/fd").iterdir()]
        except OSError:
            continue
        inodes |= {link[8:-1] for link in links if link.startswith("socket:[")}
    found = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for row in Path(table).read_text().splitlines()[1:]:
            fields = row.split()
            if fields[3] == LISTEN and fields[9] in inodes:
                address, port = fields[1].split(":")
                found.append((decode_address(address), int(port, 16)))
    return found


def decode_address(hex_address: str) -> str:
    """/proc/net/tcp's address: 32-bit words in host (little-endian) byte order."""
    words = [bytes.fromhex(hex_address[i:i + 8])[::-1] for i in range(0, len(hex_address), 8)]
    return str(ipaddress.ip_address(b"".join(words)))


def is_loopback(address: str) -> bool:
    parsed = ipaddress.ip_address(address)
    mapped = getattr(parsed, "ipv4_mapped", None)
    return (mapped or parsed).is_loopback


@pytest.mark.slow
def test_ctrl_c_stops_the_sweep_as_interrupted_and_its_printed_command_resumes_it(workdir):
    args = ["--task", "retrieval", "--trials", "2", "--max-epochs", "3", "--figures-of-best", "0",
            "--name", "ctrlc"]
    sweep = start_sweep(workdir, *args)
    output: list[str] = []
    read_until(sweep, r"epoch 2/3", output)

    listening = listening_addresses(process_tree(sweep.pid))
    print("listening:", sorted(listening))
    assert len(listening) >= 3  # at least the GCS, the raylet and a worker
    assert all(is_loopback(address) for address, _ in listening), listening

    os.killpg(sweep.pid, signal.SIGINT)
    output += sweep.stdout.readlines()
    assert sweep.wait(timeout=120) == 130, "".join(output)[-3000:]
    stopped = time.time()
    text = "".join(output)
    assert "Sweep interrupted (Ctrl-C) during task retrieval" in text
    assert "Traceback" not in text and "Tuner.restore" not in text
    command = text.split("Continue it with:\n", 1)[1].splitlines()[0].strip()
    assert command == "orchestrate sweep " + shlex.join([*args[:-2], "--name", "ctrlc", "--resume"])

    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    (sweep_run,) = runs_of(client, "retrieval", "sweep")
    assert sweep_run.info.status == "KILLED"
    assert sweep_run.data.tags["orchestrate.status"] == "interrupted"
    assert command in sweep_run.data.tags["orchestrate.reason"]
    trials = runs_of(client, "retrieval", "trial")
    assert all(run.info.status != "RUNNING" for run in trials)
    in_flight = [run for run in trials if run.data.tags["orchestrate.status"] == "interrupted"]
    assert in_flight and all(run.info.status == "KILLED" for run in in_flight)
    assert_one_value_per_step(client, "retrieval")

    time.sleep(5)  # the sweep is down a while before it is resumed
    down = time.time() - stopped  # nothing of the sweep ran for at least this long
    resumed = orchestrate(*shlex.split(command)[1:], cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]

    (sweep_run,) = runs_of(client, "retrieval", "sweep")
    assert sweep_run.info.status == "FINISHED" and sweep_run.data.tags["orchestrate.status"] == "finished"
    runs = assert_runs_mirror_checkpoints(client, "retrieval", workdir / "ray_results" / "ctrlc" / "retrieval",
                                          "val/mean_r1")
    assert len(runs) == 2 and all(run.info.status == "FINISHED" for run in runs)
    assert_one_value_per_step(client, "retrieval")
    by_id = {run.info.run_id: run for run in runs}
    continued = [by_id[run.info.run_id] for run in in_flight if run.info.run_id in by_id]
    for run in continued:  # its duration leaves out the time the sweep was down
        assert run.data.tags["orchestrate.attempts"] == "2"
        assert float(run.data.tags["orchestrate.paused_seconds"]) >= down
    assert float(sweep_run.data.tags["orchestrate.paused_seconds"]) >= down
    trained = [run for run in continued if run.data.metrics.get("best/epoch")]
    if trained:  # a trial interrupted after an epoch continues as if it never stopped
        assert assert_matches_uninterrupted(client, trained[0]) >= 2


@pytest.mark.slow
def test_a_second_ctrl_c_quits_at_once_and_the_sweep_still_resumes(workdir):
    args = ["--task", "retrieval", "--trials", "1", "--max-epochs", "2", "--figures-of-best", "0",
            "--name", "twice"]
    sweep = start_sweep(workdir, *args)
    output: list[str] = []
    read_until(sweep, r"epoch 1/2", output)
    os.killpg(sweep.pid, signal.SIGINT)
    read_until(sweep, r"Ctrl-C again to quit at once", output)
    os.killpg(sweep.pid, signal.SIGINT)
    output += sweep.stdout.readlines()
    assert sweep.wait(timeout=60) == 130, "".join(output)[-3000:]
    text = "".join(output)
    assert "Second Ctrl-C: quitting now" in text and "orchestrate sweep" in text.split("quitting now")[1]

    resumed = orchestrate("sweep", *args, "--resume", cwd=workdir)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{workdir / 'mlflow.db'}")
    runs = assert_runs_mirror_checkpoints(client, "retrieval", workdir / "ray_results" / "twice" / "retrieval",
                                          "val/mean_r1")
    assert len(runs) == 1
    assert_one_value_per_step(client, "retrieval")


def test_ctrl_c_while_the_command_starts_up_ends_it_in_one_line(workdir):
    # Half a second in, the CLI is still importing Ray, MLflow and torch (seconds); wherever
    # the Ctrl-C lands, the command ends with 130 and one line, never an import's traceback.
    sweep = subprocess.Popen(orchestrate_command("sweep", "--task", "retrieval", "--trials", "1"),
                             cwd=workdir, env=orchestrate_env(), stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(0.5)
    os.killpg(sweep.pid, signal.SIGINT)
    output, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, output[-3000:]
    assert "Traceback" not in output and "interrupted" in output, output[-3000:]


SLOW_TO_BUILD_THE_COMMAND = """
import sys, time, typer.main
build = typer.main.get_command
def slow(*args, **kwargs):  # widens the moment between the CLI's import and the command's body
    time.sleep(3)
    return build(*args, **kwargs)
typer.main.get_command = slow
sys.argv = ["orchestrate", "sweep", "--task", "retrieval", "--trials", "1"]
from orchestrator.entry_point import main
main()
"""


def test_ctrl_c_after_the_cli_loaded_and_before_the_command_ran_ends_it_in_one_line(workdir):
    # The CLI loads in a fraction of a second now; a Ctrl-C while typer builds the command was
    # a KeyboardInterrupt traceback (the whole suite's run of the test above hit it once).
    sweep = subprocess.Popen([sys.executable, "-c", SLOW_TO_BUILD_THE_COMMAND], cwd=workdir,
                             env=orchestrate_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True, start_new_session=True,
                             preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    time.sleep(1.5)
    os.killpg(sweep.pid, signal.SIGINT)
    output, _ = sweep.communicate(timeout=120)
    assert sweep.returncode == 130, output[-3000:]
    assert output.strip() == "interrupted (Ctrl-C)", output[-3000:]
