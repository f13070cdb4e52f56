"""A local Ray cluster on this machine (a head with no CPU, worker nodes of one CPU each) and a front door
on it, for tests and the bench. Everything binds 127.0.0.1 and is shut down on the way out.

    with local_cluster(workers=2) as cluster, running_front_door(engine, ClusterConfig()) as server:
        client = StorytellerClient(server.target)
"""
from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from engine_bridge.cluster.config import LOOPBACK_ENV, NAMESPACE, ClusterConfig, require_ray
from engine_bridge.registry import Limits
from engine_bridge.testing import running_server

STALE_ADDRESS_FILE = Path("/tmp/ray/ray_current_cluster")  # a dead cluster's address, joined by mistake
NODE_START_S = 180.0  # longest wait for a worker node to join, and for the head's GCS server to start
GCS_WAIT_ENV = "RAY_gcs_server_port_wait_time_s"  # Ray's wait for its GCS server (default 30 s)


@contextmanager
def local_cluster(workers: int = 2, cpus_per_worker: float = 1.0) -> Iterator:
    """A local cluster this process is connected to, its nodes started by a process of their own
    (`engine_bridge.cluster.nodehost`: never forked from this one, which may hold gRPC's threads);
    `add_node(cluster, num_cpus=...)` and `cluster.remove_node(node)` add and lose nodes."""
    os.environ[LOOPBACK_ENV] = "0"
    ray = require_ray()
    from ray._private import ray_constants

    from engine_bridge.cluster.nodehost import NodeHost

    if ray_constants.ENABLE_RAY_CLUSTER:
        raise RuntimeError(f"Ray was imported before {LOOPBACK_ENV}=0 was set: its cluster would advertise this "
                           "machine's network address; set it before importing ray")

    STALE_ADDRESS_FILE.unlink(missing_ok=True)
    # Ray gives its GCS server 30 s to start; a loaded machine gets NODE_START_S (an operator's setting is kept)
    env = {LOOPBACK_ENV: "0", GCS_WAIT_ENV: os.environ.get(GCS_WAIT_ENV, str(int(NODE_START_S)))}
    cluster = NodeHost(env, {"num_cpus": 0}, timeout_s=NODE_START_S + 30)
    try:
        for _ in range(workers):
            add_node(cluster, num_cpus=cpus_per_worker)
        ray.init(address=cluster.address, namespace=NAMESPACE, log_to_driver=False)
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
        STALE_ADDRESS_FILE.unlink(missing_ok=True)


def add_node(cluster, timeout_s: float = NODE_START_S, **node_args):
    """`cluster.add_node`, waiting up to `timeout_s` for the node to join (Ray's own wait gives up after 30 s,
    which a node starting on busy cores can take)."""
    node = cluster.add_node(wait=False, **node_args)
    cluster.wait_for_nodes(timeout=timeout_s)
    return node


@contextmanager
def running_front_door(engine, cluster: ClusterConfig, *, limits: Limits | None = None, **config):
    """A BridgeServer on 127.0.0.1 (ephemeral port) whose sessions live on the connected cluster."""
    from engine_bridge.cluster.frontdoor import ClusterRegistry

    limits = limits or Limits()
    registry = ClusterRegistry(engine, limits, config.pop("script", None), cluster=cluster)
    with running_server(engine, limits=limits, registry=registry, **config) as server:
        yield server
