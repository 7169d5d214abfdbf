"""A Ray started for a local sweep listens on 127.0.0.1 only.

On Linux Ray gives even a single-machine instance the machine's network address, and its GCS,
raylets and workers listen on every interface, reachable from the network. With
RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0 Ray keeps a local instance on 127.0.0.1 (passing
`_node_ip_address="127.0.0.1"` does not help: Ray replaces it). Ray reads that variable once,
when it is imported, which the CLI has done before it knows whether the sweep is local: so the
value Ray derived from it is set too. Every process Ray starts inherits the variable.
"""

from __future__ import annotations

import os

LOOPBACK_ONLY_ENV = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
LOOPBACK = "127.0.0.1"


def keep_on_loopback() -> None:
    """Make the next `ray.init` that starts a local Ray bind it to 127.0.0.1 only."""
    from ray._private import ray_constants

    os.environ[LOOPBACK_ONLY_ENV] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False


def listens_on_loopback_only() -> bool:
    """Whether the connected Ray's GCS is on 127.0.0.1 (so is every port it opens then)."""
    import ray

    return ray.get_runtime_context().gcs_address.rsplit(":", 1)[0] == LOOPBACK
