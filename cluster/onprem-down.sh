#!/usr/bin/env bash
# `ray down` for cluster-onprem.yaml that stops Ray on every host, not only the head.
# Ray's local provider runs its stop command on the head only; the workers' raylets, agents and
# log monitors live on. This first runs `ray stop` on every worker from the head
# (cluster/stop_workers.py, with the addresses and SSH key Ray gave the head), then `ray down`.
# Usage: bash cluster/onprem-down.sh cluster-onprem.yaml      (from the repository root)
set -uo pipefail
config=${1:?usage: bash cluster/onprem-down.sh CLUSTER_CONFIG.yaml}
ray exec "$config" "python ~/orchestrator/cluster/stop_workers.py"
workers=$?
ray down "$config" --yes || exit $?
[ "$workers" -eq 0 ] || echo "warning: Ray may still run on a worker (see above); run 'ray stop --force' there" >&2
exit "$workers"
