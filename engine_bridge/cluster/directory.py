"""The directory: one named, detached actor on the head node that owns every session actor of the cluster.

It owns placement and admission (cluster-wide: a session goes to the alive node with the most room, sized
by the Ray resources a session holds, CPU or GPU share and its cache bytes as Ray `memory`; none with room:
RESOURCE_EXHAUSTED), the map from session id to actor (front doors hold no state of their own), each
session's journal, and rebuilds. Placement is decided here, not left pending in Ray's queue, so a refusal
is immediate and says why; Ray still holds the resources, so nothing is overcommitted behind our back.
The head node goes with the cluster's control store anyway, so the journals there are as durable as the
cluster. A rebuild happens once per lost actor, whichever front door asks first; the node that lost it
takes no new session from then on.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from engine_bridge.cluster.actor import SessionSpec, remote_class, typed, unwrap
from engine_bridge.cluster.config import DIRECTORY_NAME, NAMESPACE, ClusterConfig
from engine_bridge.cluster.journal import Journal, ResumePoint, plan_resume
from engine_bridge.errors import AdmissionError, SessionNotFoundError, UnavailableError

log = logging.getLogger(__name__)
HEAD_RESOURCE = "node:__internal_head__"  # every Ray head node has it


@dataclass
class _Placed:
    spec: SessionSpec
    journal: Journal
    node: str
    handle: object = None
    actor_id: str = ""
    opened: tuple = ((), [])  # (caption dropped words, director events)
    lock: threading.Lock = field(default_factory=threading.Lock)  # one rebuild at a time


class Directory:
    def __init__(self, config: ClusterConfig, session_bytes: int, max_sessions: int):
        self.config, self.session_bytes, self.max_sessions = config, session_bytes, max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, _Placed] = {}
        self._reserved: dict[str, int] = {}  # node -> sessions being placed there
        self._lost: set[str] = set()  # nodes that lost an actor: no new sessions there
        self._retired = [0, 0]  # chunks and frames of closed sessions

    def placement(self) -> tuple[ClusterConfig, int, int]:
        """What it places sessions by: (config, session bytes, max sessions); every front door must agree."""
        return self.config, self.session_bytes, self.max_sessions

    # -- sessions -----------------------------------------------------------------------------------
    @typed
    def open(self, spec_fields: dict) -> tuple:
        """Places and starts a new session. Returns (id, handle, caption dropped words, director events)."""
        session_id = uuid.uuid4().hex
        spec = SessionSpec(session_id=session_id, **spec_fields)
        with self._lock:
            if len(self._sessions) + sum(self._reserved.values()) >= self.max_sessions:
                raise AdmissionError(f"session limit reached: {len(self._sessions)} of {self.max_sessions} "
                                     "sessions are open in the cluster; close one or try again later")
            node = self._reserve(exclude=set(), refuse=AdmissionError)
        placed = _Placed(spec, Journal(spec.settings, spec.script_text), node)
        try:
            self._start(placed, None)
        finally:
            with self._lock:
                self._reserved[node] -= 1
        with self._lock:
            self._sessions[session_id] = placed
        return session_id, placed.handle, *placed.opened

    @typed
    def lookup(self, session_id: str) -> tuple:
        """(handle, settings, caption dropped words, director events) of an open session."""
        placed = self._get(session_id)
        return placed.handle, placed.spec.settings, *placed.opened

    @typed
    def close(self, session_id: str, reason: int, timeout: float) -> tuple[int, int]:
        import ray

        with self._lock:
            placed = self._sessions.pop(session_id, None)
        if placed is None:
            raise _not_found(session_id)
        try:
            return unwrap(ray.get(placed.handle.close.remote(reason, timeout), timeout=timeout + 5))
        except ray.exceptions.RayActorError:  # its node went: nothing left to close
            return len(placed.journal.checkpoint.shots) if placed.journal.checkpoint else 0, \
                placed.journal.frames_generated
        finally:
            with self._lock:
                self._retired[0] += placed.journal.chunks_generated
                self._retired[1] += placed.journal.frames_generated
            ray.kill(placed.handle)

    @typed
    def rebuild(self, session_id: str, dead_actor: str, point: ResumePoint | None):
        """A new actor for a session whose actor `dead_actor` died, resumed from its journal for a client at
        `point`. Returns the session's current handle (the same one if another front door rebuilt it)."""
        placed = self._get(session_id)
        with placed.lock:
            if placed.actor_id != dead_actor:
                return placed.handle
            started = time.monotonic()
            with self._lock:
                self._lost.add(placed.node)
            try:
                resume = plan_resume(placed.journal, point)
                with self._lock:
                    placed.node = self._reserve(exclude=set(), refuse=UnavailableError)
                try:
                    self._start(placed, resume)
                finally:
                    with self._lock:
                        self._reserved[placed.node] -= 1
            except UnavailableError:
                with self._lock:
                    self._sessions.pop(session_id, None)
                raise
            log.info("session rebuilt", extra={"session": session_id, "node": placed.node,
                                               "seconds": round(time.monotonic() - started, 2)})
            return placed.handle

    def record(self, session_id: str, actor_id: str, seq: int, fields: dict) -> None:
        """A journal record from a session actor (records of an actor already replaced are ignored)."""
        with self._lock:
            placed = self._sessions.get(session_id)
            if placed is not None and placed.actor_id == actor_id:
                placed.journal.apply(seq, fields)

    def usage(self) -> dict:
        """Figures for GetInfo, from the journals (they lag a session by at most its running shot)."""
        with self._lock:
            journals = [p.journal for p in self._sessions.values()]
            return {"open_sessions": len(journals),
                    "busy_sessions": sum(j.running is not None or bool(j.queue) for j in journals),
                    "cache_bytes_in_use": len(journals) * self.session_bytes,
                    "chunks_generated": self._retired[0] + sum(j.chunks_generated for j in journals),
                    "frames_sent": sum(j.frames_at_start for j in journals)}

    @typed
    def node_of(self, session_id: str) -> str:
        """The id of the node a session's actor runs on."""
        return self._get(session_id).node

    # -- placement ----------------------------------------------------------------------------------
    def _start(self, placed: _Placed, resume) -> None:
        """Creates the session's actor on `placed.node` and waits until it is serving."""
        import ray
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cfg = self.config
        handle = remote_class().options(
            num_cpus=cfg.session_cpus, num_gpus=cfg.session_gpus, memory=self.session_bytes,
            scheduling_strategy=NodeAffinitySchedulingStrategy(placed.node, soft=False),
        ).remote(cfg.model, placed.spec, resume)
        actor_id = handle._actor_id.hex()
        with self._lock:  # from now on, records of the new actor count and the old one's do not
            placed.handle, placed.actor_id, placed.journal.seqs = handle, actor_id, {}
        try:
            placed.opened = unwrap(ray.get(handle.start.remote(), timeout=cfg.rebuild_timeout_s))
        except BaseException:
            ray.kill(handle)
            raise

    def _reserve(self, exclude: set[str], refuse: type) -> str:
        """Under the lock: the alive node with the most room for one more session, reserved."""
        import ray

        cfg, counts = self.config, {}
        for placed in self._sessions.values():
            counts[placed.node] = counts.get(placed.node, 0) + 1
        best, best_room, alive = None, 0, 0
        for node in ray.nodes():
            node_id = node["NodeID"]
            if not node["Alive"] or node_id in self._lost or node_id in exclude:
                continue
            alive += 1
            have = node["Resources"]
            fits = [have.get("memory", 0) / self.session_bytes]
            fits += [have.get("CPU", 0) / cfg.session_cpus] if cfg.session_cpus else []
            fits += [have.get("GPU", 0) / cfg.session_gpus] if cfg.session_gpus else []
            room = int(min(fits) + 1e-9) - counts.get(node_id, 0) - self._reserved.get(node_id, 0)
            if room > best_room:
                best, best_room = node_id, room
        if best is None:
            raise refuse(f"no node of the cluster has room for another session: {alive} alive nodes hold "
                         f"{len(self._sessions)} sessions, and a session needs {cfg.session_cpus:g} CPU, "
                         f"{cfg.session_gpus:g} GPU and {self.session_bytes / 2**20:.1f} MiB")
        self._reserved[best] = self._reserved.get(best, 0) + 1
        return best

    def _get(self, session_id: str) -> _Placed:
        with self._lock:
            placed = self._sessions.get(session_id)
        if placed is None:
            raise _not_found(session_id)
        return placed


def _not_found(session_id: str) -> SessionNotFoundError:
    return SessionNotFoundError(f"no open session {session_id[:64]!r} (closed, expired or never opened)")


def get_or_create(config: ClusterConfig, session_bytes: int, max_sessions: int):
    """The cluster's directory actor (created by the first front door, on the head node)."""
    import ray

    return ray.remote(Directory).options(
        name=DIRECTORY_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        max_concurrency=64, resources={HEAD_RESOURCE: 0.001},
    ).remote(config, session_bytes, max_sessions)
