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
import os
import re
import shlex
import subprocess
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


@pytest.mark.parametrize("name", CONFIGS)
def test_setup_installs_the_project(name):
    cfg = prepared(name)
    assert (ROOT / cfg["file_mounts"][REPO_MOUNT] / "pyproject.toml").is_file()
    install = re.compile(rf"pip install (\S+ )*-e {re.escape(REPO_MOUNT)}/?(\s|$)")
    for node in ("head_setup_commands", "worker_setup_commands"):
        assert any(install.search(c) for c in cfg[node]), f"{node} lacks pip install -e {REPO_MOUNT}"


@pytest.mark.parametrize("name", CONFIGS)
def test_cluster_ray_matches_local_ray(name):
    # `ray up`/`ray attach` need the same Ray on the cluster as locally.
    pins = re.findall(r"ray\[[^\]]*\]==([\w.]+)", " ".join(load(name)["setup_commands"]))
    assert pins == [ray.__version__]


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
