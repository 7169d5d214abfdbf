"""Run on the head of an on-prem cluster: `ray stop` on every worker host, over SSH.

The worker addresses, SSH user and key come from ~/ray_bootstrap_config.yaml, the config `ray up`
gave the head (whose autoscaler reaches the workers the same way). Prints one line per worker;
exits 1 when Ray could not be stopped on one of them. Called by cluster/onprem-down.sh.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml


def main() -> int:
    config = yaml.safe_load((Path.home() / "ray_bootstrap_config.yaml").read_text())
    auth = config["auth"]
    key = os.path.expanduser(auth["ssh_private_key"])
    failed = 0
    for address in config["provider"].get("worker_ips", []):
        command = ["ssh", "-i", key, "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
                   "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null",
                   "-o", "ConnectTimeout=10", "-o", "LogLevel=ERROR",
                   f"{auth['ssh_user']}@{address}", "~/venv/bin/ray stop --force"]
        try:
            result = subprocess.run(command, capture_output=True, text=True, timeout=180)
            problem = None if result.returncode == 0 else (result.stderr.strip() or "exit code "
                                                            f"{result.returncode}").splitlines()[-1]
        except subprocess.TimeoutExpired:
            problem = "no answer within 180 s"
        print(f"{address}: " + ("Ray stopped" if problem is None else f"ray stop failed: {problem}"))
        failed += problem is not None
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
