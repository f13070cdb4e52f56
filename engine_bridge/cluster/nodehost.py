"""The nodes of a local Ray cluster, started and ended by a process of their own.

Ray starts a node's processes (GCS server, raylet, agents) by forking the process that asks and running Python
in the child before it execs. A test process that has served gRPC holds gRPC's threads, and a fork beside
them can leave the child stuck before its exec: in a loaded suite run a head's GCS server never wrote a line
(it writes its port within ~40 ms when it starts). So the nodes are made by a spawned process that holds no
other threads. `NodeHost` is its handle in the process that asked, with the part of
`ray.cluster_utils.Cluster` the tests and the bench use: `address`, `add_node`, `wait_for_nodes`,
`worker_nodes`, `remove_node` and `shutdown`. Nothing here is imported by the serving path.
"""
from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass


@dataclass(frozen=True)
class HostedNode:
    """A worker node of the host's cluster, as the asking process knows it."""

    node_id: str


def _serve(conn, env: dict[str, str], head_args: dict) -> None:
    """The host process: starts the head, then adds, waits for and removes nodes as asked, until "stop"
    or until the asking process goes (its end of the pipe closes)."""
    os.environ.update(env)
    from ray.cluster_utils import Cluster

    try:
        cluster = Cluster(initialize_head=True, head_node_args=head_args)
    except Exception as exc:  # reported to the asking process, which raises it
        conn.send(("error", f"the head did not start: {type(exc).__name__}: {exc}"))
        return
    nodes = {}
    conn.send(("ok", cluster.address))
    asked_to_stop = False
    try:
        while True:
            verb, arg = conn.recv()
            if verb == "stop":
                asked_to_stop = True
                break
            try:
                if verb == "add":
                    node = cluster.add_node(wait=False, **arg)
                    nodes[node.node_id] = node
                    reply = node.node_id
                elif verb == "wait":
                    reply = cluster.wait_for_nodes(timeout=arg)
                elif verb == "remove":
                    reply = cluster.remove_node(nodes.pop(arg))
                else:
                    raise ValueError(f"unknown request {verb!r}")
            except Exception as exc:
                conn.send(("error", f"{verb}: {type(exc).__name__}: {exc}"))
                continue
            conn.send(("ok", reply))
    except EOFError:  # the asking process went without a "stop": nobody is left to answer
        pass
    finally:
        cluster.shutdown()
    if asked_to_stop:
        conn.send(("ok", None))


class NodeHost:
    """A local cluster whose nodes a spawned process starts (a head with `head_args`, then worker nodes)."""

    def __init__(self, env: dict[str, str], head_args: dict, timeout_s: float):
        ctx = multiprocessing.get_context("spawn")
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(child, env, head_args), name="ray-node-host", daemon=True)
        self._proc.start()
        child.close()
        self._nodes: list[HostedNode] = []
        self._timeout_s = timeout_s
        try:
            self.address = self._reply(timeout_s)
        except BaseException:
            self._end()
            raise

    def add_node(self, wait: bool = False, **node_args) -> HostedNode:
        """A worker node (`wait=False` only: `wait_for_nodes` waits for every node added)."""
        if wait:
            raise ValueError("add nodes with wait=False, then wait_for_nodes(timeout)")
        node = HostedNode(self._call("add", node_args, self._timeout_s))
        self._nodes.append(node)
        return node

    def wait_for_nodes(self, timeout: float) -> None:
        self._call("wait", timeout, timeout + 30)

    @property
    def worker_nodes(self) -> list[HostedNode]:
        return list(self._nodes)

    def remove_node(self, node: HostedNode) -> None:
        """Kills every process of `node`: its sessions are lost, as when a machine goes."""
        self._call("remove", node.node_id, self._timeout_s)
        self._nodes.remove(node)

    def shutdown(self) -> None:
        """Ends every node and the host process."""
        try:
            if self._proc.is_alive():
                self._conn.send(("stop", None))
                self._reply(self._timeout_s)
        finally:
            self._end()

    def _call(self, verb: str, arg, timeout_s: float):
        self._conn.send((verb, arg))
        return self._reply(timeout_s)

    def _reply(self, timeout_s: float):
        if not self._conn.poll(timeout_s):
            raise TimeoutError(f"the Ray node host did not answer within {timeout_s:.0f} s")
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"the Ray node host ended (exit code {self._proc.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"Ray node host: {value}")
        return value

    def _end(self) -> None:
        self._proc.join(10)
        if self._proc.is_alive():
            self._proc.kill()
            self._proc.join(10)
        self._conn.close()
