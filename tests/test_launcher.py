"""`ray up cluster-onprem.yaml`, `orchestrate sweep --address auto`, teardown: for real.

Ray's own cluster launcher brings up the repository's on-prem config on two "hosts" on this
machine: each is its own PID and mount namespace (its own /root and /tmp/ray) running sshd, both
inside a network namespace this test creates, which has only a loopback interface (every packet
stays there). The head is 127.0.0.1, the worker 127.0.0.2; the launcher reaches the head through
`ip netns exec NS nc`, the head's autoscaler reaches the worker over SSH like on real machines.

What the test changes in cluster-onprem.yaml, and why (everything else is used as written):
- the hosts, SSH user and key, and a proxy command into the namespace;
- MLflow on a sqlite file of the head (only the driver writes to MLflow), storage on a path both
  hosts see (a shared filesystem);
- the worker starts Ray with its own node IP and dashboard-agent port, and without the fixed
  object-manager port: both hosts share one network stack here;
- the hosts cannot reach a package index: pip installs nothing new there (PIP_NO_INDEX, set by
  their sshd), the project is built with the installed setuptools, and the test's own Python
  environment stands in for the one `pip install -c cluster/constraints.txt` would make.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from mlflow.tracking import MlflowClient

from tests.conftest import REPO

pytestmark = pytest.mark.slow

HERE = Path(__file__).resolve().parent / "cluster"
VENV = Path(sys.prefix)
HEAD_IP, WORKER_IP, SSH_PORT = "127.0.0.1", "127.0.0.2", 22422
NAMESPACE = f"orch-up-{os.getpid()}"
CLUSTER_NAME = f"orch-launcher-{os.getpid()}"
TOOLS = ("ip", "unshare", "sshd", "ssh", "ssh-keygen", "rsync", "nc")
TRIALS = 4
# ray processes, by what their command lines contain
RAY_PROCESS_MARKS = ("raylet", "gcs_server", "ray::", "dashboard", "log_monitor", "monitor.py",
                     "runtime_env", "default_worker.py", "ray start", "/ray/")


def _run(command: list[str], timeout: float, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


def why_not_runnable() -> str | None:
    """Why this machine cannot run the test (the skip reason), or None when it can."""
    if os.geteuid() != 0:
        return "needs root: it creates network, PID and mount namespaces"
    search = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [tool for tool in TOOLS if shutil.which(tool, path=search) is None]
    if missing:
        return (f"{', '.join(missing)} not installed (apt-get install openssh-server rsync "
                "netcat-openbsd iproute2 util-linux)")
    probe = f"orch-probe-{os.getpid()}"
    try:
        if _run(["ip", "netns", "add", probe], 30).returncode != 0:
            return "this machine does not allow network namespaces (ip netns add failed)"
        nested = _run(["ip", "netns", "exec", probe, "unshare", "--pid", "--fork", "--mount-proc",
                       "--mount", "sh", "-c",
                       "d=$(mktemp -d) && mkdir $d/l $d/u $d/w $d/m && "
                       "mount -t overlay overlay -o lowerdir=$d/l,upperdir=$d/u,workdir=$d/w $d/m"],
                      30)
        if nested.returncode != 0:
            return f"no PID/mount namespaces or overlay mounts here ({nested.stderr.strip()[:200]})"
    finally:
        _run(["ip", "netns", "delete", probe], 30)
    return None


SKIP_REASON = why_not_runnable()
if SKIP_REASON:
    pytestmark = [pytest.mark.slow, pytest.mark.skip(reason=f"launcher test skipped: {SKIP_REASON}")]


def ray_pids_in(namespace_pid: int) -> list[str]:
    """Ray processes (pid and command) in the PID namespace whose init is namespace_pid."""
    try:
        target = os.readlink(f"/proc/{namespace_pid}/ns/pid")
    except OSError:
        return []  # the namespace is gone, and every process in it
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "pid") != target:
                continue
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in command for mark in RAY_PROCESS_MARKS):
            found.append(f"{entry.name} {command[:160]}")
    return found


def namespace_init(host_process: subprocess.Popen) -> int:
    """The PID (seen from here) of the host's PID 1: unshare's only child."""
    children = Path(f"/proc/{host_process.pid}/task/{host_process.pid}/children").read_text().split()
    assert len(children) == 1, children
    return int(children[0])


def loopback_config(root: Path) -> Path:
    """cluster-onprem.yaml with the changes the module docstring lists."""
    config = yaml.safe_load((REPO / "cluster-onprem.yaml").read_text())
    config["cluster_name"] = CLUSTER_NAME
    config["provider"].update(head_ip=HEAD_IP, worker_ips=[WORKER_IP])
    config["auth"] = {"ssh_user": "root", "ssh_private_key": str(root / "ssh" / "id_ed25519"),
                      "ssh_proxy_command": f"ip netns exec {NAMESPACE} nc %h {SSH_PORT}"}
    env_writer = [c for c in config["setup_commands"] if "~/.orchestrate.env" in c and "printf" in c]
    assert len(env_writer) == 1
    replaced = (env_writer[0]
                .replace("http://CHANGE-ME-mlflow-host:5000", f"sqlite:///{root}/mlflow.db")
                .replace("s3://CHANGE-ME-bucket/sweeps", str(root / "storage")))
    assert replaced.count(str(root)) == 2, replaced
    config["setup_commands"] = [replaced if c == env_writer[0] else c for c in config["setup_commands"]]
    start = config["worker_start_ray_commands"]
    assert sum("--object-manager-port=8076" in c for c in start) == 1
    config["worker_start_ray_commands"] = [c.replace(
        "--object-manager-port=8076",
        "--node-ip-address=$(echo $SSH_CONNECTION | cut -d' ' -f3) --dashboard-agent-listen-port=52366")
        for c in start]
    path = root / "cluster-loopback.yaml"
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


@pytest.fixture
def loopback_hosts(tmp_path):
    """Two SSH "hosts" (head, worker) in a loopback-only network namespace; all gone afterwards."""
    root = tmp_path
    ssh = root / "ssh"
    ssh.mkdir()
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "id_ed25519")], check=True)
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(ssh / "host_key")], check=True)
    shutil.copy(ssh / "id_ed25519.pub", ssh / "authorized_keys")
    (ssh / "sshd_config").write_text((HERE / "sshd_config").read_text().replace("ROOT", str(root)))
    for role in ("head", "worker"):
        home = root / role / "home"
        home.mkdir(parents=True)
        (root / role / "tmpray").mkdir()
        for dotfile in (".bashrc", ".profile"):
            if Path("/etc/skel", dotfile).is_file():
                shutil.copy(Path("/etc/skel", dotfile), home / dotfile)
        (home / "venv").symlink_to(VENV)  # the config's `test -x ~/venv/bin/python` finds it
    (root / "storage").mkdir()
    (root / "client" / "home").mkdir(parents=True)

    subprocess.run(["ip", "netns", "add", NAMESPACE], check=True)
    hosts = {}
    try:
        subprocess.run(["ip", "netns", "exec", NAMESPACE, "ip", "link", "set", "lo", "up"], check=True)
        listen = {"head": [f"{HEAD_IP}:{SSH_PORT}"],
                  # the head's autoscaler drops ssh_proxy_command and uses port 22
                  "worker": [f"{WORKER_IP}:{SSH_PORT}", f"{WORKER_IP}:22"]}
        for role in ("head", "worker"):
            log = open(root / f"{role}-sshd.log", "w")
            hosts[role] = subprocess.Popen(
                ["ip", "netns", "exec", NAMESPACE, "unshare", "--pid", "--fork", "--kill-child",
                 "--mount-proc", "--mount", str(HERE / "node.sh"), role, str(root), str(VENV),
                 *listen[role]],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        for role, address in (("head", HEAD_IP), ("worker", WORKER_IP)):
            deadline = time.monotonic() + 60
            while _run(["ip", "netns", "exec", NAMESPACE, "nc", "-z", "-w", "1", address, str(SSH_PORT)],
                       10).returncode != 0:
                assert hosts[role].poll() is None, (root / f"{role}-sshd.log").read_text()
                assert time.monotonic() < deadline, f"sshd of the {role} never listened"
                time.sleep(0.5)
        yield root, hosts
    finally:
        for process in hosts.values():  # PID 1 of each host dies with it, and all it started
            process.kill()
            process.wait(timeout=60)
        subprocess.run(["ip", "netns", "delete", NAMESPACE], check=False)
        for suffix in ("state", "lock"):  # the local provider's bookkeeping on this machine
            Path(f"/tmp/cluster-{CLUSTER_NAME}.{suffix}").unlink(missing_ok=True)


def test_ray_up_then_a_two_node_sweep_finishes_on_both_hosts_then_everything_stops(loopback_hosts):
    root, hosts = loopback_hosts
    config = loopback_config(root)
    client_env = {
        "PATH": f"{VENV / 'bin'}:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": str(root / "client" / "home"),
        "LANG": "C.UTF-8",
    }
    timings = {}

    def ray(*args: str, timeout: float) -> subprocess.CompletedProcess:
        began = time.monotonic()
        cache = ["--no-config-cache"] if args[0] == "exec" else []  # no /tmp/ray-config-* left
        result = _run(["ray", *args, *cache], timeout, cwd=REPO, env=client_env)
        timings[args[0] + (" " + args[2][:24] if args[0] == "exec" else "")] = time.monotonic() - began
        return result

    assert _run(["ray", "get-auth-token", "--generate"], 60, env=client_env).returncode == 0
    up = ray("up", str(config), "--yes", "--no-config-cache", "--disable-usage-stats",
             "--log-style", "record", timeout=600)
    (root / "up.log").write_text(up.stdout + up.stderr)
    assert up.returncode == 0, (up.stdout + up.stderr)[-4000:]

    # The head's autoscaler sets the worker up over SSH (Ray's v1 autoscaler, see the config).
    began = time.monotonic()
    while _nodes_alive(config, ray) < 2:
        assert time.monotonic() - began < 420, ray("exec", str(config), "ray status", timeout=120).stdout
        time.sleep(10)
    timings["worker joined, after ray up"] = time.monotonic() - began

    data = root / "bucket" / "retrieval"
    made = _run([str(VENV / "bin" / "orchestrate"), "data", "--task", "retrieval", "--out", str(data)],
                300, cwd=root)
    assert made.returncode == 0, made.stderr
    # Data that only the head has: the pre-sweep check names the worker, nothing trains.
    missing = ray("exec", str(config),
                  "cp -r " + str(data) + " ~/only-on-head && orchestrate sweep --address auto "
                  "--task retrieval --data-dir ~/only-on-head --trials 2 --name missing; echo exit=$?",
                  timeout=600)
    assert "exit=2" in missing.stdout, missing.stdout[-3000:]
    error_lines = [line for line in missing.stdout.splitlines() if line.startswith("error: ")]
    assert len(error_lines) == 1 and error_lines[0].startswith(f"error: node {WORKER_IP} "), error_lines
    assert "/root/only-on-head: no such directory" in error_lines[0]
    print(error_lines[0])

    # The promised use: the sweep on both hosts, data from a URI each host fetches once.
    sweep = ray("exec", str(config),
                f"orchestrate sweep --address auto --task retrieval --data-dir file://{data} "
                f"--trials {TRIALS} --max-epochs 2 --cpus-per-trial 2 --name twonode; echo exit=$?",
                timeout=900)
    (root / "sweep.log").write_text(sweep.stdout + sweep.stderr)
    assert "exit=0" in sweep.stdout, sweep.stdout[-5000:]
    # The summary is whole in this log (ray exec's terminal has no size, COLUMNS is unset).
    row = [line for line in sweep.stdout.splitlines() if line.startswith("│ retrieval ")]
    assert len(row) == 1 and row[0].rstrip().endswith("│"), sweep.stdout[-3000:]
    assert row[0].split("│")[2].strip() == str(TRIALS) and row[0].split("│")[7].strip() == "0"

    client = MlflowClient(f"sqlite:///{root / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("retrieval")
    (sweep_run,) = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'sweep'"
                                      " and tags.`orchestrate.sweep` = 'twonode'")
    assert sweep_run.data.params["cluster_nodes"] == "2"
    trials = client.search_runs([experiment.experiment_id], "tags.`orchestrate.role` = 'trial'"
                                " and tags.`orchestrate.sweep` = 'twonode'")
    assert len(trials) == TRIALS
    assert all(run.data.tags["orchestrate.status"] in ("completed", "pruned", "converged")
               and run.info.status == "FINISHED" for run in trials), [
        (run.data.tags.get("orchestrate.status"), run.data.tags.get("orchestrate.reason")) for run in trials]
    by_host = {}
    for run in trials:
        by_host.setdefault(run.data.tags["orchestrate.node_ip"], []).append(run)
    print("trials per host:", {ip: len(runs) for ip, runs in by_host.items()})
    assert set(by_host) == {HEAD_IP, WORKER_IP}
    assert len({run.data.tags["orchestrate.node_id"] for run in trials}) == 2
    for run in by_host[WORKER_IP]:  # the worker really trained, and MLflow has its epochs
        history = client.get_metric_history(run.info.run_id, "val/mean_r1")
        assert [metric.step for metric in history] and run.data.tags["orchestrate.device"] == "cpu"
    worker_cache = root / "worker" / "home" / ".cache" / "orchestrate" / "data"
    assert len([p for p in worker_cache.iterdir() if p.is_dir()]) == 1  # fetched once there

    # Teardown as docs/cluster.md says: Ray stops on every host, not only the head.
    down = _run(["bash", str(REPO / "cluster" / "onprem-down.sh"), str(config)], 300,
                cwd=REPO, env=client_env)
    (root / "down.log").write_text(down.stdout + down.stderr)
    assert down.returncode == 0, (down.stdout + down.stderr)[-3000:]
    assert f"{WORKER_IP}: Ray stopped" in down.stdout, down.stdout[-3000:]
    deadline = time.monotonic() + 60
    while any(ray_pids_in(namespace_init(process)) for process in hosts.values()):
        assert time.monotonic() < deadline, {role: ray_pids_in(namespace_init(process))
                                             for role, process in hosts.items()}
        time.sleep(2)
    print("timings (s):", {key: round(value, 1) for key, value in timings.items()})


def _nodes_alive(config: Path, ray) -> int:
    listed = ray("exec", str(config), "python -c \"import ray; ray.init(address='auto', "
                 "logging_level='ERROR'); print('alive', sum(n['Alive'] for n in ray.nodes()))\"",
                 timeout=120)
    for line in listed.stdout.splitlines():
        if line.startswith("alive "):
            return int(line.split()[1])
    return 0
