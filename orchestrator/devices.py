"""What compute a process really has: the GPU torch can use, the CUDA build, the NVIDIA driver.

Ray hands out GPUs as logical resources; only torch can tell whether CUDA works in this process.
A trial given a GPU that torch cannot use must fail with the facts, never train on the CPU.
"""

from __future__ import annotations

import os
import re
import socket
from pathlib import Path

DRIVER_VERSION_FILE = Path("/proc/driver/nvidia/version")


class GpuUnusable(RuntimeError):
    """Ray gave this process a GPU that torch cannot use; the message is one line."""


def nvidia_driver_version() -> str:
    """The loaded NVIDIA kernel driver's version, or 'none loaded' (read from /proc, no tools)."""
    try:
        text = DRIVER_VERSION_FILE.read_text()
    except OSError:
        return "none loaded"
    found = re.search(r"Kernel Module\s+(?:for \S+\s+)?([\d.]+)", text)
    return found.group(1) if found else text.strip().splitlines()[0][:80]


def node_ip() -> str:
    try:
        import ray

        return ray.util.get_node_ip_address()
    except Exception:  # noqa: BLE001 - outside Ray the host name is the best name
        return socket.gethostname()


def cuda_problem(gpus_assigned: int) -> str | None:
    """Why this process cannot use the GPUs Ray assigned it, in one line; None when it can.

    The line says what torch sees and the driver and wheel versions, so a user can
    tell a missing driver from a CPU-only wheel from a wheel too new for the driver.
    """
    import torch

    if gpus_assigned <= 0 or torch.cuda.is_available():
        return None
    wheel_cuda = torch.version.cuda
    wheel = f"torch {torch.__version__} " + (
        f"built for CUDA {wheel_cuda}" if wheel_cuda else "built without CUDA (a CPU-only wheel)")
    visible = os.environ.get("CUDA_VISIBLE_DEVICES", "unset")
    return (
        f"Ray assigned {gpus_assigned} GPU(s) here but torch cannot use CUDA: torch sees "
        f"{torch.cuda.device_count()} CUDA device(s) (CUDA_VISIBLE_DEVICES={visible}); {wheel}; "
        f"NVIDIA driver {nvidia_driver_version()}. Install a driver that supports that CUDA "
        "version or the torch wheel matching the driver (docs/cluster.md), or sweep with "
        "--gpus-per-trial 0"
    )


def device_tags(device) -> dict[str, str]:
    """MLflow tags describing where a trial trained: node, device, GPU model, CUDA, torch."""
    import torch

    tags = {
        "orchestrate.node_ip": node_ip(),
        "orchestrate.device": device.type,
        "orchestrate.torch": torch.__version__,
        "orchestrate.cuda": torch.version.cuda or "none",
    }
    if device.type == "cuda":
        tags["orchestrate.gpu"] = torch.cuda.get_device_name(device)
        tags["orchestrate.nvidia_driver"] = nvidia_driver_version()
    else:
        tags["orchestrate.gpu"] = "none"
    return tags
