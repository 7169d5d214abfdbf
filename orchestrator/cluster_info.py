"""What the connected Ray cluster is made of: its alive nodes and their CPUs and GPUs."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    ip: str
    cpus: float
    gpus: float

    def name(self) -> str:
        """How a user recognises the node in a message: its address and the start of its id."""
        return f"{self.ip} (node {self.node_id[:12]})"


def alive_nodes() -> list[NodeInfo]:
    """The alive nodes of the Ray cluster this process is connected to, head first."""
    import ray

    nodes = [
        NodeInfo(node["NodeID"], node["NodeManagerAddress"], node["Resources"].get("CPU", 0.0),
                 node["Resources"].get("GPU", 0.0))
        for node in ray.nodes() if node.get("Alive")
    ]
    head = ray.get_runtime_context().gcs_address.rpartition(":")[0]
    return sorted(nodes, key=lambda node: (node.ip != head, node.ip, node.node_id))


def cluster_params(nodes: list[NodeInfo]) -> dict[str, str]:
    """MLflow params of a sweep run saying what it ran on: node count, CPUs, GPUs, each node."""
    return {
        "cluster_nodes": str(len(nodes)),
        "cluster_cpus": f"{sum(node.cpus for node in nodes):g}",
        "cluster_gpus": f"{sum(node.gpus for node in nodes):g}",
        "cluster": "; ".join(f"{node.ip} {node.cpus:g} CPU {node.gpus:g} GPU" for node in nodes),
    }
