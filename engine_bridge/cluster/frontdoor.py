"""The front door's side of a cluster: a SessionRegistry whose sessions are actors found through the directory.

`ClusterRegistry` plugs into `BridgeServer(registry=...)`: the servicer, the interceptors, health, auth,
limits and errors are the single-process server's, unchanged. A front door holds no session state: it finds
a session's actor by id (the directory), and caches only the handle. `RemoteSession` gives the servicer
what it uses of a Session; its `outbox` is fed by one thread per attached stream that reads the actor's
streaming generator. When that actor dies with its node, the same thread asks the directory for a rebuild,
giving what its client has received (`ResumePoint`), attaches to the new actor and goes on: the client
sees a pause. Stopping a front door closes no session: its streams end with UNAVAILABLE (attach again,
through any front door) and stop their session's work, as a stream that goes away does.
"""
from __future__ import annotations

import logging
import threading
from collections import deque
import time

from engine_bridge.cluster.actor import Raised, unwrap
from engine_bridge.cluster.config import ClusterConfig, connect, require_ray
from engine_bridge.cluster.directory import get_or_create
from engine_bridge.cluster.journal import ResumePoint
from engine_bridge.errors import SessionNotFoundError, UnavailableError
from engine_bridge.outbox import CLOSED
from engine_bridge.registry import Limits, SessionRegistry
from engine_bridge.session import Queued, SessionSettings
from engine_bridge.wire import TERMINAL_PHASES, pb

log = logging.getLogger(__name__)
# A safety bound on one call to the directory, not an expected time: a call may start a session actor (a
# process that loads a model, up to ClusterConfig.rebuild_timeout_s) and, the first time, the directory's own
# process; on a machine whose cores are busy that took over 30 s.
CALL_TIMEOUT_S = 150.0
CLOSED_POINT = ResumePoint()  # the stream received its session's `closed` update


class ClusterRegistry(SessionRegistry):
    def __init__(self, engine, limits: Limits, server_script=None, *, cluster: ClusterConfig):
        super().__init__(engine, limits, server_script)
        ray = require_ray()
        connect(cluster.address)
        self._ray, self.cluster = ray, cluster
        self.directory = get_or_create(cluster, self.session_bytes, limits.max_sessions)
        mine = (cluster, self.session_bytes, limits.max_sessions)
        theirs = ray.get(self.directory.placement.remote(), timeout=CALL_TIMEOUT_S)
        if theirs != mine:  # the first front door's settings hold until the directory is ended
            raise ValueError(f"this cluster's directory places sessions by {theirs} (config, session bytes, "
                             f"max sessions); this front door asks for {mine}: start it with the same model, "
                             f"--session-cpus/--session-gpus and --max-sessions")
        # Serve once the nodes' spare session actors are warm, so that opening a session loads no model.
        warm = ray.get(self.directory.warm_spares.remote(CALL_TIMEOUT_S), timeout=CALL_TIMEOUT_S + 30)
        log.info("front door ready", extra={"warm_spares": warm})
        self._remote: dict[str, RemoteSession] = {}

    def call(self, ref):
        return unwrap(self._ray.get(ref, timeout=CALL_TIMEOUT_S))

    # -- lifecycle ----------------------------------------------------------------------------------
    def open(self, settings: SessionSettings, script_text: str = "") -> "RemoteSession":
        if script_text:
            self.parse_script(script_text, "session script")  # refused here, before a node is taken
        lim = self.limits
        session_id, handle, dropped, events = self.call(self.directory.open.remote(dict(
            settings=settings, script_text=script_text, server_script=self.server_script,
            max_queued=lim.max_queued_shots, max_param_chars=lim.max_param_chars,
            max_shots=lim.max_shots_per_request, max_script_bytes=lim.max_script_bytes)))
        return self._keep(RemoteSession(self, session_id, handle, settings, dropped, events))

    def get(self, session_id: str) -> "RemoteSession":
        with self._lock:
            session = self._remote.get(session_id)
        handle, settings, dropped, events = self.call(self.directory.lookup.remote(session_id))
        if session is None or _actor_id(session.handle) != _actor_id(handle):
            session = self._keep(RemoteSession(self, session_id, handle, settings, dropped, events))
        return session

    def close(self, session_id: str, reason: int, timeout: float | None = None) -> tuple[int, int]:
        with self._lock:
            self._remote.pop(session_id, None)
        timeout = self.limits.close_timeout_s if timeout is None else timeout
        return self.call(self.directory.close.remote(session_id, reason, timeout))

    def close_all(self, reason: int) -> None:
        """This front door stops: its streams end with UNAVAILABLE; the sessions live on in the cluster."""
        with self._lock:
            sessions, self._remote = list(self._remote.values()), {}
        for session in sessions:
            session.outbox.end(UnavailableError("this front door is shutting down; attach to the session "
                                                "again (through any front door)"))

    def rebuild(self, session: "RemoteSession", dead_actor: str, point: ResumePoint | None):
        handle = self.call(self.directory.rebuild.remote(session.id, dead_actor, point))
        session.handle = handle
        return handle

    def start_reaper(self) -> None:
        """Idle sessions are not expired in a cluster yet (docs/cluster.md)."""

    def stop_reaper(self) -> None:
        pass

    def _keep(self, session: "RemoteSession") -> "RemoteSession":
        with self._lock:
            self._remote[session.id] = session
        return session

    # -- figures ------------------------------------------------------------------------------------
    def sessions(self) -> list:
        with self._lock:
            return list(self._remote.values())

    def usage(self) -> pb.Usage:
        return pb.Usage(**self._ray.get(self.directory.usage.remote(), timeout=CALL_TIMEOUT_S))


def _already_sent(update: pb.StoryUpdate | None, point: ResumePoint) -> bool:
    """Whether the client had `update` when its stream resumed at `point`. The actor resumed for this point
    sends none of these; one rebuilt for another front door's call (no point) sends its running shot from
    the start, and they are left out here."""
    if update is None or not point.shot_id:
        return False
    if update.HasField("frame"):
        return update.frame.shot_id == point.shot_id and update.frame.frame_index < point.frames
    return (update.HasField("shot") and update.shot.shot_id == point.shot_id
            and update.shot.phase == pb.SHOT_PHASE_STARTED)


def _actor_id(handle) -> str:
    return handle._actor_id.hex()


class _Director:
    def __init__(self, events):
        self.events = list(events)


class RemoteSession:
    """What the servicer uses of a Session, for a session actor. Calls to an actor that died with its node
    rebuild the session first (once), then go to the new actor."""

    def __init__(self, registry: ClusterRegistry, session_id: str, handle, settings: SessionSettings,
                 caption_dropped, events):
        self.registry, self.id, self.handle, self.settings = registry, session_id, handle, settings
        self.caption_dropped, self.director = tuple(caption_dropped), _Director(events)
        self.outbox = RemoteOutbox(self)

    def _call(self, method: str, *args):
        import ray

        handle = self.handle
        try:
            return self.registry.call(getattr(handle, method).remote(self.id, *args))
        except ray.exceptions.RayActorError:
            handle = self.registry.rebuild(self, _actor_id(handle), None)
            return self.registry.call(getattr(handle, method).remote(self.id, *args))

    def submit(self, shots, *, cut: bool) -> Queued:
        return self._call("submit", list(shots), cut)

    def cancel(self) -> Queued:
        return self.submit([], cut=True)

    def trigger(self, event: str, params) -> Queued:
        return self._call("trigger", event, dict(params))

    def state(self) -> tuple[bool, int]:
        """(busy, updates waiting at the actor). A closed session has neither, as a closed Session: its actor
        may already serve another session, or be gone."""
        try:
            return self._call("state")
        except SessionNotFoundError:
            return False, 0

    @property
    def busy(self) -> bool:
        return self.state()[0]

    def attach(self) -> int:
        return self.outbox.start(self._call("attach"))

    def detach(self, ticket: int) -> None:
        remote = self.outbox.stop(ticket)
        if remote is not None:
            self.handle.detach.remote(self.id, remote)


class _Handoff:
    """Between the feeding thread and the stream: one update at most waits here (the session's playout
    buffer, in its actor, stays the one that holds frames), replies and errors jump the line."""

    def __init__(self):
        self._cond = threading.Condition()
        self._update, self._has_update = None, False
        self._urgent: deque = deque()

    def put(self, item, wanted) -> bool:
        """An update from the session (or None: it was idle); waits while the previous one is not taken.
        False, not queued, once `wanted()` is False (the stream ended)."""
        with self._cond:
            while self._has_update:
                if not wanted():
                    return False
                self._cond.wait(0.5)
            self._update, self._has_update = item, True
            self._cond.notify_all()
            return True

    def put_urgent(self, item) -> None:
        with self._cond:
            self._urgent.append(item)
            self._cond.notify_all()

    def take(self, timeout: float):
        with self._cond:
            if not self._cond.wait_for(lambda: self._urgent or self._has_update, timeout):
                return None
            if self._urgent:
                return self._urgent.popleft()
            item, self._update, self._has_update = self._update, None, False
            self._cond.notify_all()
            return item

    def __len__(self) -> int:
        with self._cond:
            return len(self._urgent) + self._has_update


class RemoteOutbox:
    """The front door's end of a session's stream: `get` as Outbox.get, fed by a thread that reads the
    actor's streaming generator, records what the client got, and resumes the stream after a lost node."""

    def __init__(self, session: RemoteSession):
        self.session = session
        self._lock = threading.Lock()
        self._items = _Handoff()
        self._ticket = 0  # the local stream's ticket
        self._remote: int | None = None  # its ticket at the actor
        self._point = ResumePoint()

    def start(self, remote_ticket: int) -> int:
        with self._lock:
            self._ticket += 1
            self._remote, self._items, self._point = remote_ticket, _Handoff(), ResumePoint()
            ticket, items = self._ticket, self._items
        threading.Thread(target=self._feed, args=(ticket, items), name=f"feed-{self.session.id[:8]}",
                         daemon=True).start()
        return ticket

    def stop(self, ticket: int) -> int | None:
        """The local stream `ticket` ended; returns its ticket at the actor (None if already stopped)."""
        with self._lock:
            if ticket != self._ticket or self._remote is None:
                return None
            remote, self._remote = self._remote, None
            return remote

    @property
    def streaming(self) -> bool:  # a stream is attached (a cancelled one until the server sees it end)
        return self._remote is not None

    def end(self, error: BaseException) -> None:
        """Ends the attached stream with `error`."""
        self._items.put_urgent(error)

    def put_reply(self, reply) -> None:
        self._items.put_urgent(reply)

    @property
    def pending(self) -> int:
        return len(self._items) + self.session.state()[1]

    def get(self, timeout: float, ticket: int | None = None):
        with self._lock:
            if ticket is not None and (ticket != self._ticket or self._remote is None):
                return None
            items = self._items
        return items.take(timeout)

    def _received(self, update: pb.StoryUpdate) -> None:
        """Moves the resume point past `update`, which is in this front door's hands (and will reach the
        client unless the client goes)."""
        p = self._point
        if update.HasField("closed"):
            self._point = CLOSED_POINT
        elif update.HasField("frame"):
            f = update.frame
            frames = p.frames + 1 if f.shot_id == p.shot_id else 1
            self._point = ResumePoint(f.shot_id, frames, False, f.story_frame + 1)
        elif update.HasField("shot"):
            s = update.shot
            if s.phase == pb.SHOT_PHASE_STARTED:
                self._point = ResumePoint(s.shot_id, 0, False, p.next_story_frame)
            elif s.phase in TERMINAL_PHASES and s.shot_id == p.shot_id:
                self._point = ResumePoint(p.shot_id, p.frames, True, p.next_story_frame)

    # -- the feeding thread -------------------------------------------------------------------------
    def _feed(self, ticket: int, items: _Handoff) -> None:
        import ray

        session, backpressure = self.session, self.session.registry.cluster.backpressure

        def wanted() -> bool:
            return ticket == self._ticket and self._remote is not None

        resumed_at = None  # after a resume: what the client had then
        while True:
            with self._lock:
                remote = self._remote if ticket == self._ticket else None
            if remote is None:
                return
            handle = session.handle
            try:
                stream = handle.updates.options(_generator_backpressure_num_objects=backpressure).remote(
                    session.id, remote)
                for ref in stream:
                    item = ray.get(ref)
                    if isinstance(item, Raised):
                        items.put_urgent(item.error())
                        return
                    for data in item if item is not None else [None]:
                        update = pb.StoryUpdate.FromString(data) if data is not None else None
                        if resumed_at is not None and _already_sent(update, resumed_at):
                            continue
                        if not items.put(update, wanted):
                            return
                        if update is not None:
                            self._received(update)
                items.put(CLOSED, wanted)
                return
            except ray.exceptions.RayActorError:
                if self._point is CLOSED_POINT or not wanted():  # closed and ended, or nobody listens: no loss
                    items.put(CLOSED, wanted)
                    return
                lost = time.monotonic()
                log.warning("session actor lost; rebuilding", extra={"session": session.id})
            resumed_at = self._point
            try:
                new = session.registry.rebuild(session, _actor_id(handle), resumed_at)
                remote_ticket = unwrap(ray.get(new.attach.remote(session.id), timeout=CALL_TIMEOUT_S))
            except Exception as exc:  # typed (no room: UNAVAILABLE) or not: the stream ends with it
                items.put_urgent(exc)
                return
            with self._lock:
                if ticket != self._ticket:
                    return
                self._remote = remote_ticket
            log.info("session resumed", extra={"session": session.id, "pause_s": round(time.monotonic() - lost, 2)})
