"""The Ray cluster launcher configs (cluster*.yaml) pass Ray's own validation
and keep the properties the sweeps rely on.

Validation is what `ray up` does before it touches a cloud:
`prepare_config` (merge the provider's bundled defaults.yaml, merge setup
commands, fill per-node-type min/max workers) then `validate_config` (the
bundled ray-schema.json plus Ray's cross-field checks). Neither talks to a
cloud provider for aws/gcp/local, so nothing is mocked. The later `ray up`
steps that do call the cloud (resource autodetection, `bootstrap_config`)
are not exercised here.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

import jsonschema
import pytest
import yaml

import ray
from ray.autoscaler._private.util import prepare_config, validate_config

ROOT = Path(__file__).resolve().parents[1]

# file -> provider type
CONFIGS = {
    "cluster.yaml": "aws",
    "cluster-gcp.yaml": "gcp",
    "cluster-onprem.yaml": "local",
}
AUTOSCALING = [name for name, provider in CONFIGS.items() if provider != "local"]

REPO_MOUNT = "~/orchestrator"
ENV_FILE = "~/.orchestrate.env"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "0.0.0.0", "::1", ""}


def load(name: str) -> dict:
    with open(ROOT / name) as f:
        return yaml.safe_load(f)


def prepared(name: str) -> dict:
    return prepare_config(copy.deepcopy(load(name)))


def head_type(cfg: dict) -> dict:
    return cfg["available_node_types"][cfg["head_node_type"]]


def worker_types(cfg: dict) -> dict:
    return {k: v for k, v in cfg["available_node_types"].items() if k != cfg["head_node_type"]}


def written_env(cfg: dict, tmp_path: Path) -> dict:
    """Run the setup command that writes ~/.orchestrate.env in a scratch HOME,
    source the file with bash, and return what it exports."""
    writers = [c for c in cfg["setup_commands"] if ENV_FILE in c and ">" in c and "bashrc" not in c]
    assert len(writers) == 1, f"expected one setup command writing {ENV_FILE}: {writers}"
    home = tmp_path / "home"
    home.mkdir()
    env = {"HOME": str(home), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    subprocess.run(["bash", "-c", writers[0]], env=env, check=True)
    out = subprocess.run(
        ["bash", "-c", f"source {ENV_FILE} && env -0"],
        env=env, check=True, capture_output=True, text=True,
    ).stdout
    return dict(item.split("=", 1) for item in out.split("\0") if "=" in item)


# --- Ray's own validation ----------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_validates_as_written(name):
    cfg = load(name)
    assert cfg["provider"]["type"] == CONFIGS[name]
    validate_config(cfg)


@pytest.mark.parametrize("name", CONFIGS)
def test_validates_after_ray_up_preparation(name):
    validate_config(prepared(name))


@pytest.mark.parametrize(
    "mutate",
    [
        pytest.param(lambda c: c.update(not_a_ray_field=1), id="unknown-top-level-key"),
        pytest.param(
            lambda c: worker_types(c)[next(iter(worker_types(c)))].update(min_worker=0),
            id="typo-in-node-type",
        ),
        pytest.param(lambda c: head_type(c)["resources"].update(GPU=-1), id="negative-resource"),
        pytest.param(lambda c: c.pop("cluster_synced_files"), id="missing-cluster_synced_files"),
    ],
)
def test_invalid_config_fails_validation(mutate):
    cfg = load("cluster.yaml")
    mutate(cfg)
    with pytest.raises((jsonschema.ValidationError, RuntimeError)):
        validate_config(cfg)


# --- GPU workers, CPU head ----------------------------------------------------


@pytest.mark.parametrize("name", AUTOSCALING)
def test_gpu_workers_autoscale_from_zero(name):
    cfg = prepared(name)
    gpu_workers = {k: v for k, v in worker_types(cfg).items() if v["resources"].get("GPU", 0) >= 1}
    assert gpu_workers, "no worker type declares GPU resources"
    for nt in gpu_workers.values():
        assert nt["min_workers"] == 0
        assert 0 < nt["max_workers"] <= cfg["max_workers"]
        assert nt["resources"].get("CPU", 0) >= 1


@pytest.mark.parametrize("name", AUTOSCALING)
def test_head_has_no_gpu(name):
    cfg = load(name)
    head = head_type(cfg)
    assert head["resources"].get("GPU", 0) == 0
    assert head.get("max_workers", 0) == 0
    node = head["node_config"]
    if CONFIGS[name] == "aws":
        assert re.match(r"(m|c|r|t)\d", node["InstanceType"]), node["InstanceType"]
    else:
        assert "guestAccelerators" not in node
        assert not re.match(r"(a2|a3|g2)-", node["machineType"]), node["machineType"]


# --- the project is installed on every node ----------------------------------


CONSTRAINTS = "~/orchestrator/cluster/constraints.txt"


def pip_installs(commands: list[str]) -> list[str]:
    return [c for c in commands if re.search(r"\bpip install\b", c) and "--upgrade pip" not in c]


@pytest.mark.parametrize("name", CONFIGS)
def test_setup_installs_the_project_with_every_version_locked(name):
    cfg = prepared(name)
    assert (ROOT / cfg["file_mounts"][REPO_MOUNT] / "pyproject.toml").is_file()
    assert (ROOT / cfg["file_mounts"][REPO_MOUNT] / "cluster" / "constraints.txt").is_file()
    project = re.compile(r'pip install -c \S+ -e "\$HOME/orchestrator\[cluster\]"')
    for node in ("head_setup_commands", "worker_setup_commands"):
        assert any(project.search(c) for c in cfg[node]), f"{node} lacks the project install"
        # head and workers install the same way: every pip install of the project's
        # dependencies goes through the constraints (the autoscaler's cloud SDK aside)
        for command in pip_installs(cfg[node]):
            if re.search(r"boto3|google-api-python-client", command):
                assert node == "head_setup_commands"
                continue
            assert f"-c {CONSTRAINTS} " in command, command


@pytest.mark.parametrize("name", CONFIGS)
def test_torch_build_matches_each_node(name):
    cfg = load(name)
    head = " ".join(pip_installs(cfg["head_setup_commands"]))
    worker = " ".join(pip_installs(cfg["worker_setup_commands"]))
    # the CPU head gets the CPU build (no CUDA libraries), GPU workers a CUDA 12 build
    assert re.search(r"--index-url https://download.pytorch.org/whl/cpu .*torch torchvision", head)
    assert re.search(r"--index-url https://download.pytorch.org/whl/cu12\d .*torch torchvision", worker)
    assert "torch" not in " ".join(pip_installs(cfg["setup_commands"]))
    # a worker whose torch cannot use CUDA refuses to join
    assert any("torch.cuda.is_available()" in c for c in cfg["worker_setup_commands"])


def locked() -> dict[str, str]:
    lines = (ROOT / "cluster" / "constraints.txt").read_text().splitlines()
    return dict(line.split("==") for line in lines if line and not line.startswith("#"))


def test_constraints_are_the_versions_tested_here():
    """The lock every node installs holds exactly what this test suite runs with."""
    import importlib.metadata as metadata

    pins = locked()
    assert pins["ray"] == ray.__version__
    for name in ("torch", "torchvision", "mlflow", "optuna", "pyarrow", "aiohttp-cors"):
        assert name in pins, name
    different = {name: (version, metadata.version(name).split("+")[0]) for name, version in pins.items()
                 if metadata.version(name).split("+")[0] != version}
    assert not different, f"regenerate with: python cluster/make_constraints.py > cluster/constraints.txt ({different})"
    assert not [name for name in pins if re.match(r"nvidia-|cuda-|triton$", name)]
    header = (ROOT / "cluster" / "constraints.txt").read_text().splitlines()[2]
    assert f"Python {sys.version_info.major}.{sys.version_info.minor}." in header


@pytest.mark.parametrize("name", CONFIGS)
def test_nodes_run_the_python_the_lock_was_made_with(name):
    cfg = load(name)
    python = f"python{sys.version_info.major}.{sys.version_info.minor}"
    assert any(f"{python} -m venv ~/venv" in c for c in cfg["setup_commands"])


# --- environment: MLflow + shared storage ------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_env_points_at_shared_services(name, tmp_path):
    cfg = load(name)
    env = written_env(cfg, tmp_path)

    mlflow = urlparse(env["MLFLOW_TRACKING_URI"])
    assert mlflow.scheme in {"http", "https", "databricks"}, env["MLFLOW_TRACKING_URI"]
    assert mlflow.scheme == "databricks" or mlflow.hostname not in LOCAL_HOSTS

    storage = urlparse(env["ORCHESTRATE_STORAGE"])
    assert storage.scheme in {"s3", "gs", "gcs", "abfs", "hdfs"}, env["ORCHESTRATE_STORAGE"]
    assert storage.netloc, env["ORCHESTRATE_STORAGE"]


@pytest.mark.parametrize("name", CONFIGS)
def test_env_reaches_ray_and_login_shells(name):
    cfg = load(name)
    # Sourced before `ray start`, so raylets and the trials they spawn inherit it.
    for key in ("head_start_ray_commands", "worker_start_ray_commands"):
        start = [c for c in cfg[key] if "ray start" in c]
        assert len(start) == 1
        assert re.search(rf"source {re.escape(ENV_FILE)}\s*&&.*ray start", start[0], re.S)
    # ... and by ~/.bashrc, for `ray attach` / `ray exec` / `ray submit` shells.
    assert any(f"'source {ENV_FILE}' >> ~/.bashrc" in c for c in cfg["setup_commands"])


# --- security: dashboard on localhost, token auth on --------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_dashboard_bound_to_localhost(name):
    cfg = load(name)
    (start,) = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    args = shlex.split(start.replace(";", " ").replace("&&", " "))
    hosts = [a.split("=", 1)[1] for a in args if a.startswith("--dashboard-host=")]
    assert hosts == ["127.0.0.1"]
    assert "0.0.0.0" not in (ROOT / name).read_text()


@pytest.mark.parametrize("name", CONFIGS)
def test_token_auth_on(name, tmp_path):
    from ray._private.authentication.authentication_token_setup import (
        AUTH_MODE_ENV_VAR,
        _get_default_token_path,
    )

    cfg = load(name)
    text = (ROOT / name).read_text()
    assert AUTH_MODE_ENV_VAR == "RAY_AUTH_MODE"
    # Set explicitly for every Ray process, never disabled.
    assert written_env(cfg, tmp_path)[AUTH_MODE_ENV_VAR] == "token"
    assert not re.search(r"RAY_AUTH_MODE\s*=\s*['\"]?disabled", text, re.I)
    # Ray rejects AUTH_MODE in --system-config; the mode only comes from the env.
    assert "AUTH_MODE" not in " ".join(cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"])
    # Every node gets the token at the path Ray's loader reads by default
    # (file_mounts go to the head and from there to every worker) ...
    default_token = "~/" + _get_default_token_path().relative_to(Path.home()).as_posix()
    assert cfg["file_mounts"].get(default_token) == default_token
    # ... and no token value is committed in the config.
    assert "RAY_AUTH_TOKEN=" not in text


# --- cloud rights: workers write to the storage bucket ---------------------------


def test_no_account_id_anywhere():
    for path in [*(ROOT / name for name in CONFIGS), *(ROOT / "cluster").glob("*.sh")]:
        text = path.read_text()
        assert not re.search(r"(?<![\d.])\d{12}(?![\d.])", text), path
        assert not re.search(r"arn:aws:iam::\d", text), path


def test_aws_workers_get_a_named_profile_the_head_may_pass():
    cfg = load("cluster.yaml")
    head = head_type(cfg)["node_config"]["IamInstanceProfile"]
    workers = [nt["node_config"]["IamInstanceProfile"] for nt in worker_types(cfg).values()]
    assert head == {"Name": "orchestrate-head"}
    assert workers and all(profile == {"Name": "orchestrate-worker"} for profile in workers)
    script = (ROOT / "cluster" / "aws-iam.sh").read_text()
    assert "make_profile orchestrate-worker" in script and "make_profile orchestrate-head" in script
    # only the head may hand the worker role to EC2, and only that role
    assert '"Action":"iam:PassRole","Resource":"arn:aws:iam::*:role/orchestrate-worker"' in script
    worker_policy = script[script.index("make_profile orchestrate-worker"):].splitlines()[0]
    assert "PassRole" not in worker_policy and "BUCKET_RIGHTS" in worker_policy
    assert re.search(r'"s3:PutObject".*"Resource":"arn:aws:s3:::\'\$BUCKET\'/\*"', script)
    assert subprocess.run(["bash", "-n", str(ROOT / "cluster" / "aws-iam.sh")]).returncode == 0


def test_gcp_workers_get_a_service_account_of_the_configured_project():
    cfg = load("cluster-gcp.yaml")
    project = cfg["provider"]["project_id"]
    for node_type in worker_types(cfg).values():
        (account,) = node_type["node_config"]["serviceAccounts"]
        assert account["email"] == f"orchestrate-worker@{project}.iam.gserviceaccount.com"
        assert "https://www.googleapis.com/auth/cloud-platform" in account["scopes"]
    script = (ROOT / "cluster" / "gcp-iam.sh").read_text()
    assert "ACCOUNT=orchestrate-worker@$PROJECT.iam.gserviceaccount.com" in script
    assert "--role roles/storage.objectUser" in script
    assert subprocess.run(["bash", "-n", str(ROOT / "cluster" / "gcp-iam.sh")]).returncode == 0


@pytest.mark.parametrize("name", AUTOSCALING)
def test_ray_down_terminates_rather_than_stops(name):
    assert load(name)["provider"]["cache_stopped_nodes"] is False


# --- on-prem: the autoscaler that starts workers, a teardown that stops them ----


def test_onprem_head_runs_the_autoscaler_that_starts_local_workers():
    cfg = load("cluster-onprem.yaml")
    (start,) = [c for c in cfg["head_start_ray_commands"] if "ray start" in c]
    # after `ray up`'s own `export RAY_enable_autoscaler_v2=1; ` prefix, this one wins
    assert re.search(r"RAY_enable_autoscaler_v2=0\s+ray start", start)


def test_onprem_teardown_stops_every_worker_then_runs_ray_down():
    script = (ROOT / "cluster" / "onprem-down.sh").read_text()
    assert 'ray exec "$config" "python ~/orchestrator/cluster/stop_workers.py"' in script
    assert 'ray down "$config" --yes' in script
    assert "cluster/onprem-down.sh" in (ROOT / "cluster-onprem.yaml").read_text()
    assert subprocess.run(["bash", "-n", str(ROOT / "cluster" / "onprem-down.sh")]).returncode == 0


def test_stop_workers_reaches_every_worker_of_the_bootstrap_config(tmp_path):
    """cluster/stop_workers.py as the head runs it: one ssh per worker, with Ray's key."""
    home = tmp_path / "home"
    (home / "bin").mkdir(parents=True)
    (home / "ray_bootstrap_config.yaml").write_text(yaml.safe_dump({
        "provider": {"type": "local", "head_ip": "10.0.0.10", "worker_ips": ["10.0.0.11", "10.0.0.12"]},
        "auth": {"ssh_user": "ops", "ssh_private_key": "~/ray_bootstrap_key.pem"}}))
    calls = home / "calls.jsonl"
    fake_ssh = home / "bin" / "ssh"  # records its arguments; a stand-in for the network only
    fake_ssh.write_text(f"#!{sys.executable}\nimport json, sys\n"
                        f"open({str(calls)!r}, 'a').write(json.dumps(sys.argv[1:]) + '\\n')\n")
    fake_ssh.chmod(0o755)
    result = subprocess.run([sys.executable, str(ROOT / "cluster" / "stop_workers.py")],
                            env={**os.environ, "HOME": str(home), "PATH": f"{home / 'bin'}:{os.environ['PATH']}"},
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["10.0.0.11: Ray stopped", "10.0.0.12: Ray stopped"]
    made = [json.loads(line) for line in calls.read_text().splitlines()]
    assert [call[-2] for call in made] == ["ops@10.0.0.11", "ops@10.0.0.12"]
    assert all(call[-1] == "~/venv/bin/ray stop --force" for call in made)
    assert all(call[call.index("-i") + 1] == str(home / "ray_bootstrap_key.pem") for call in made)
