"""The directory: one named, detached actor on the head node that owns every session actor of the cluster.

It owns placement and admission (cluster-wide: a session goes to the alive node with the most room, sized
by the Ray resources a session holds, CPU or GPU share and its cache bytes as Ray `memory`; none with room:
RESOURCE_EXHAUSTED), the map from session id to actor (front doors hold no state of their own), each
session's journal, and rebuilds. Placement is decided here, not left pending in Ray's queue, so a refusal
is immediate and says why; Ray still holds the resources, so nothing is overcommitted behind our back.
The head node goes with the cluster's control store anyway, so the journals there are as durable as the
cluster. A rebuild happens once per lost actor, whichever front door asks first; the node that lost it
takes no new session from then on.

Starting a session actor means a new process that loads a model: seconds, and far more on a busy machine. So
each node keeps up to `ClusterConfig.spares_per_node` spare actors, warmed (engine loaded) in the background,
and a session opened or rebuilt there takes one; a closed session's actor becomes a spare again. A spare holds
the Ray resources of a session, but only in room no session holds (sessions + sessions being placed + spares
never exceed what a node fits), and a session placed on a node takes that node's spare if it has one: spares
never cost admission a session.
"""
from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field

from engine_bridge.cluster.actor import SessionSpec, not_found, remote_class, typed, unwrap
from engine_bridge.cluster.config import DIRECTORY_NAME, NAMESPACE, ClusterConfig
from engine_bridge.cluster.journal import Journal, ResumePoint, plan_resume
from engine_bridge.errors import AdmissionError, UnavailableError

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


@dataclass
class _Spare:
    """A session actor with no session: ready once its `warm` call (`warmed`, None once known done) returns."""

    handle: object
    warmed: object = None

    def ready(self) -> bool:
        """Never blocks (`ray.wait` with timeout 0), so the directory may ask under its lock."""
        import ray

        if self.warmed is not None and ray.wait([self.warmed], timeout=0)[0]:
            self.warmed = None
        return self.warmed is None


class Directory:
    def __init__(self, config: ClusterConfig, session_bytes: int, max_sessions: int):
        self.config, self.session_bytes, self.max_sessions = config, session_bytes, max_sessions
        self._lock = threading.Lock()
        self._sessions: dict[str, _Placed] = {}
        self._reserved: dict[str, int] = {}  # node -> sessions being placed there
        self._lost: set[str] = set()  # nodes that lost an actor: no new sessions there
        self._spares: dict[str, list[_Spare]] = {}  # node -> actors without a session, warm or warming
        self._topping = threading.Lock()  # one top-up at a time
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
            node, spare = self._reserve(refuse=AdmissionError)
        placed = _Placed(spec, Journal(spec.settings, spec.script_text), node)
        try:
            self._start(placed, None, spare)
        except BaseException:
            with self._lock:
                self._reserved[node] -= 1
            raise
        with self._lock:  # one step, so that no placement in between sees the node emptier than it is
            self._reserved[node] -= 1
            self._sessions[session_id] = placed
        self._top_up_soon()
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
            raise not_found(session_id)
        kept = False
        try:
            result = unwrap(ray.get(placed.handle.close.remote(session_id, reason, timeout), timeout=timeout + 5))
            kept = self._keep_as_spare(placed)
            return result
        except ray.exceptions.RayActorError:  # its node went: nothing left to close
            return len(placed.journal.checkpoint.shots) if placed.journal.checkpoint else 0, \
                placed.journal.frames_generated
        finally:
            with self._lock:
                self._retired[0] += placed.journal.chunks_generated
                self._retired[1] += placed.journal.frames_generated
            if not kept:
                ray.kill(placed.handle)
                self._top_up_soon()

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
                    placed.node, spare = self._reserve(refuse=UnavailableError)
                try:
                    self._start(placed, resume, spare)
                finally:
                    with self._lock:
                        self._reserved[placed.node] -= 1
            except UnavailableError:
                with self._lock:
                    self._sessions.pop(session_id, None)
                raise
            finally:
                self._top_up_soon()
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

    # -- spares -------------------------------------------------------------------------------------
    def warm_spares(self, timeout: float) -> int:
        """Starts the spares every node has room for and waits up to `timeout` s until they are warm (a front
        door calls this before it serves). Returns how many are warm."""
        import ray

        self._top_up()
        with self._lock:
            warming = [spare.warmed for spares in self._spares.values() for spare in spares if not spare.ready()]
        if warming:
            ray.wait(warming, num_returns=len(warming), timeout=timeout)
        return len(self.spares()[0])

    def spares(self) -> tuple[list[str], list[str]]:
        """The actor ids of the cluster's spares: (warm, still warming)."""
        with self._lock:
            spares = [spare for node_spares in self._spares.values() for spare in node_spares]
            ready = [spare.ready() for spare in spares]
        ids = [spare.handle._actor_id.hex() for spare in spares]
        return [i for i, r in zip(ids, ready) if r], [i for i, r in zip(ids, ready) if not r]

    def _keep_as_spare(self, placed: _Placed) -> bool:
        """A closed session's actor, engine loaded, becomes a spare of its node if that node has room for one.
        Where the node already has its spares, a warm actor is worth more than one still warming: that one is
        ended and this one kept."""
        import ray

        with self._lock:
            spares = self._spares.setdefault(placed.node, [])
            room = self._rooms()[0].get(placed.node, 0)  # 0: the node is lost or gone
            keep = min(self.config.spares_per_node, room)
            warming = [spare for spare in spares if not spare.ready()]
            if keep <= 0 or (len(spares) >= keep and not warming):
                return False
            ended = warming[-1] if len(spares) >= keep else None
            if ended is not None:
                spares.remove(ended)
            spares.append(_Spare(placed.handle))
        if ended is not None:
            ray.kill(ended.handle)
        return True

    def _top_up_soon(self) -> None:
        threading.Thread(target=self._top_up, name="spares", daemon=True).start()

    def _top_up(self) -> None:
        """Starts spares where a node has room no session holds (up to spares_per_node a node); ends the
        spares of nodes gone or lost."""
        import ray

        with self._topping:
            ended, started = [], 0
            with self._lock:
                rooms, _ = self._rooms()
                for node in list(self._spares):
                    if node not in rooms:
                        ended += self._spares.pop(node)
                for node, room in rooms.items():
                    spares = self._spares.setdefault(node, [])
                    for _ in range(min(self.config.spares_per_node - len(spares), room - len(spares))):
                        spares.append(self._create(node))
                        started += 1
            for spare in ended:
                ray.kill(spare.handle)
            if started or ended:
                log.info("spares topped up", extra={"started": started, "ended": len(ended)})

    # -- placement ----------------------------------------------------------------------------------
    def _create(self, node: str) -> _Spare:
        """A new session actor on `node`, warming."""
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        cfg = self.config
        handle = remote_class().options(
            num_cpus=cfg.session_cpus, num_gpus=cfg.session_gpus, memory=self.session_bytes,
            scheduling_strategy=NodeAffinitySchedulingStrategy(node, soft=False),
        ).remote(cfg.model)
        return _Spare(handle, handle.warm.remote())

    def _start(self, placed: _Placed, resume, spare: _Spare | None) -> None:
        """Opens the session on `spare` (or on a new actor on `placed.node`) and waits until it is serving."""
        import ray

        spare = spare or self._create(placed.node)
        handle, timeout = spare.handle, self.config.rebuild_timeout_s
        with self._lock:  # from now on, records of the new actor count and the old one's do not
            placed.handle, placed.actor_id, placed.journal.seqs = handle, handle._actor_id.hex(), {}
        try:
            if spare.warmed is not None:
                ray.get(spare.warmed, timeout=timeout)
            placed.opened = unwrap(ray.get(handle.open.remote(placed.spec, resume), timeout=timeout))
        except ray.exceptions.GetTimeoutError:
            ray.kill(handle)
            raise UnavailableError(f"the session's actor did not start within {timeout:g} s (rebuild_timeout_s): "
                                   "its node is too busy to load a model; try again, or keep more spares warm "
                                   "(--spares-per-node)") from None
        except BaseException:
            ray.kill(handle)
            raise

    def _rooms(self) -> tuple[dict[str, int], int]:
        """Under the lock: ({alive node: sessions it has room for beyond those it holds or is taking}, alive
        nodes), leaving out nodes that lost an actor."""
        import ray

        cfg, counts = self.config, {}
        for placed in self._sessions.values():
            counts[placed.node] = counts.get(placed.node, 0) + 1
        rooms, alive = {}, 0
        for node in ray.nodes():
            node_id = node["NodeID"]
            if not node["Alive"] or node_id in self._lost:
                continue
            alive += 1
            have = node["Resources"]
            fits = [have.get("memory", 0) / self.session_bytes]
            fits += [have.get("CPU", 0) / cfg.session_cpus] if cfg.session_cpus else []
            fits += [have.get("GPU", 0) / cfg.session_gpus] if cfg.session_gpus else []
            rooms[node_id] = int(min(fits) + 1e-9) - counts.get(node_id, 0) - self._reserved.get(node_id, 0)
        return rooms, alive

    def _reserve(self, refuse: type) -> tuple[str, _Spare | None]:
        """Under the lock: an alive node with room for one more session, reserved, and the spare the session
        takes there (warm if it has one; None: it has none). Nodes with a warm spare come first (no wait for a
        model to load), then the most room (sessions spread; the node a session just went to is warming its
        next spare, so the next session goes elsewhere)."""
        rooms, alive = self._rooms()
        ranked = sorted(((any(s.ready() for s in self._spares.get(node, ())), room, node)
                         for node, room in rooms.items() if room > 0), reverse=True)
        if not ranked:
            cfg = self.config
            raise refuse(f"no node of the cluster has room for another session: {alive} alive nodes hold "
                         f"{len(self._sessions)} sessions, and a session needs {cfg.session_cpus:g} CPU, "
                         f"{cfg.session_gpus:g} GPU and {self.session_bytes / 2**20:.1f} MiB")
        node = ranked[0][2]
        self._reserved[node] = self._reserved.get(node, 0) + 1
        spares = self._spares.get(node, [])
        spare = next((s for s in spares if s.ready()), spares[0] if spares else None)
        if spare is not None:
            spares.remove(spare)
        return node, spare

    def _get(self, session_id: str) -> _Placed:
        with self._lock:
            placed = self._sessions.get(session_id)
        if placed is None:
            raise not_found(session_id)
        return placed


def get_or_create(config: ClusterConfig, session_bytes: int, max_sessions: int):
    """The cluster's directory actor (created by the first front door, on the head node)."""
    import ray

    return ray.remote(Directory).options(
        name=DIRECTORY_NAME, namespace=NAMESPACE, lifetime="detached", get_if_exists=True, num_cpus=0,
        max_concurrency=64, resources={HEAD_RESOURCE: 0.001},
    ).remote(config, session_bytes, max_sessions)
