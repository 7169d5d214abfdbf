"""Before any trial starts: one check on every alive node that the data and the GPUs work there.

A Ray task pinned to each node (NodeAffinitySchedulingStrategy, not soft) looks at the data
locations the trials will read and, when trials ask for GPUs, whether torch can use a GPU Ray
hands out on that node. A node that fails is named in one line, so a trial never meets the
problem on a worker, where Tune's retries would hide it.
"""

from __future__ import annotations

from orchestrator.cluster_info import NodeInfo

CHECK_TIMEOUT_SECONDS = 600.0  # a large dataset is fetched into each node's cache here
DATA_PROBLEM = "cannot read the data at"
DATA_HINT = ("; put the data on a filesystem every node mounts at the same path (or in the "
             "cluster's file_mounts), or pass a URI (s3://, gs://, ...) as --data-dir")


class NodeCheckFailed(ValueError):
    """A node cannot run the sweep's trials; the message is one line naming the node and why."""


def _check_here(locations: list[str], gpus_assigned: int) -> list[str]:
    """Runs on the node: the problems found there, one line each."""
    from orchestrator.data_access import unreadable_reason
    from orchestrator.devices import cuda_problem

    problems = []
    for location in locations:
        reason = unreadable_reason(location)
        if reason is not None:
            problems.append(f"{DATA_PROBLEM} {location}: {reason}")
    if gpus_assigned:
        problem = cuda_problem(gpus_assigned)
        if problem is not None:
            problems.append(problem)
    return problems


def check_every_node(nodes: list[NodeInfo], locations: list[str], gpus_per_trial: float) -> None:
    """Run the check on every node at once; NodeCheckFailed (one line) for the first bad node.

    A node with GPUs is checked holding as much GPU as one trial asks for (so CUDA_VISIBLE_DEVICES
    is what a trial there gets); a node without GPUs, or a sweep without GPU trials, holds none.
    """
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    check = ray.remote(_check_here)
    pending = {}
    for node in nodes:
        gpus = min(gpus_per_trial, node.gpus) if gpus_per_trial > 0 else 0
        remote = check.options(
            num_cpus=0, num_gpus=gpus, max_retries=0,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node.node_id, soft=False))
        pending[node] = remote.remote(locations, 1 if gpus else 0)
    for node, reference in pending.items():
        try:
            problems = ray.get(reference, timeout=CHECK_TIMEOUT_SECONDS)
        except Exception as error:  # noqa: BLE001 - the node died or the task could not run there
            first = str(error).strip().splitlines()[-1][:300] if str(error).strip() else type(error).__name__
            raise NodeCheckFailed(f"node {node.name()}: the pre-sweep check could not run there "
                                  f"({first})") from None
        if problems:
            more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
            hint = DATA_HINT if problems[0].startswith(DATA_PROBLEM) else ""
            raise NodeCheckFailed(f"node {node.name()}: {problems[0]}{more}{hint}")
